#!/usr/bin/python3
# SMTP sink with optional AUTH (PLAIN/LOGIN, no TLS needed) that writes each message to a Maildir.
# Copied from the coffer test-server runbook; used by tests/integration/test_sched_notify.sh.
# usage: /usr/bin/python3 smtp_sink.py PORT MAILDIR [USER PASS]
import sys, time, mailbox, signal
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

port, maildir = int(sys.argv[1]), sys.argv[2]
creds = (sys.argv[3].encode(), sys.argv[4].encode()) if len(sys.argv) > 4 else None

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == creds
    return AuthResult(success=ok, handled=False)  # handled=False -> server sends 535

kw = dict(hostname="127.0.0.1", port=port)
if creds:
    kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=False)
c = Controller(Mailbox(maildir), **kw)
c.start()
print("smtp sink ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
c.stop()
