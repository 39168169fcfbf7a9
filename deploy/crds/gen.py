#!/usr/bin/env python3
"""gen.py -- generate the coffer.dev/v1alpha1 CustomResourceDefinitions in this folder.

Usage: python3 deploy/crds/gen.py [--check]
Writes coffer.dev_<plural>.yaml for Repository, BackupSchedule, Backup and Restore, here and
into the Helm chart (deploy/helm/coffer/crds); --check
only compares (exit 1 when a file is stale). The schemas share their pieces (the backup target,
secret references, conditions) here, so the four files cannot drift apart. Standard library
only; the small YAML writer below emits block style with quoted strings where YAML needs it.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- shared schema pieces ----------------------------------------------------------------
def s(desc=None, **kw):
    d = {'type': 'string', **kw}
    if desc:
        d['description'] = desc
    return d

def i64(desc=None, **kw):
    d = {'type': 'integer', 'format': 'int64', **kw}
    if desc:
        d['description'] = desc
    return d

def obj(props, required=None, desc=None, **kw):
    d = {'type': 'object'}
    if desc:
        d['description'] = desc
    if required:
        d['required'] = required
    d['properties'] = props
    d.update(kw)
    return d

def arr(items, desc=None, **kw):
    d = {'type': 'array', 'items': items, **kw}
    if desc:
        d['description'] = desc
    return d

SECRET_KEY_REF = obj({'name': s(minLength=1), 'key': s(minLength=1)}, ['name', 'key'])
SECRET_REF = obj({'name': s(minLength=1)}, ['name'])
DURATION = s(pattern=r'^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$')
CONDITIONS = arr(obj({
    'type': s(), 'status': s(enum=['True', 'False', 'Unknown']), 'reason': s(),
    'message': s(), 'lastTransitionTime': s(format='date-time'),
    'observedGeneration': i64()}, ['type', 'status']),
    **{'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type']})
CONN = {
    'host': s('Server host (a Service name in the cluster).'),
    'port': {'type': 'integer', 'minimum': 1, 'maximum': 65535},
    'user': s(),
    'passwordSecretRef': SECRET_KEY_REF,
}
TARGET = obj({
    'type': s('What is backed up.', enum=['files', 'postgres', 'mysql', 'redis', 'ldap',
                                          'command', 'k8s']),
    'files': obj({
        'pvc': s('A PersistentVolumeClaim mounted read-only by the backup Job.'),
        'podSelector': obj({'matchLabels': {'type': 'object',
                                            'additionalProperties': {'type': 'string'}}},
                           desc='Back up the volumes named in each matching pod\'s '
                                'coffer.dev/backup-volumes annotation.'),
        'volumes': arr(s(), 'Volume names of the selected pods.'),
        'paths': arr(s(), 'Paths below the volume (default: all).'),
        'exclude': arr(s()),
    }),
    'postgres': obj({**CONN, 'databases': arr(s()), 'allDatabases': {'type': 'boolean'},
                     'excludeDatabases': arr(s()), 'format': s(enum=['custom', 'plain']),
                     'globals': {'type': 'boolean'}, 'sslmode': s(),
                     'sslSecretRef': SECRET_REF}),
    'mysql': obj({**CONN, 'databases': arr(s()), 'allDatabases': {'type': 'boolean'},
                  'pauseReplica': {'type': 'boolean'}, 'extraArgs': arr(s())}),
    'redis': obj({**CONN}),
    'ldap': obj({'method': s(enum=['slapcat', 'ldapsearch']), 'uri': s(), 'bindDN': s(),
                 'baseDN': s(), 'passwordSecretRef': SECRET_KEY_REF, 'configFile': s()}),
    'command': obj({'command': arr(s(), minItems=1), 'name': s('File name in the snapshot.')},
                   ['command', 'name']),
    'k8s': obj({'namespaces': arr(s()), 'allNamespaces': {'type': 'boolean'},
                'labelSelector': s(), 'includeKinds': arr(s()), 'excludeKinds': arr(s()),
                'clusterResources': {'type': 'boolean'}, 'includeSecrets': {'type': 'boolean'}}),
}, ['type'])
RETENTION = obj({k: {'type': 'integer', 'minimum': 0} for k in (
    'keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly',
    'days', 'weeks', 'months')} | {'keepWithin': s(), 'keepTags': arr(s()),
                                  'prune': {'type': 'boolean'}})
HOOK = obj({'command': arr(s(), minItems=1), 'timeout': DURATION,
            'onError': s(enum=['continue', 'fail'])}, ['command'])
RUN_SPEC = {
    'target': TARGET,
    'repositories': arr(s(minLength=1), 'Names of Repository objects in this namespace.',
                        minItems=1),
    'tags': arr(s()),
    'retention': RETENTION,
    'hooks': obj({'before': arr(HOOK), 'after': arr(HOOK)}),
    'runOn': s('Run only on this node (for a ReadWriteOnce volume or one replica).'),
    'resources': {'type': 'object', 'x-kubernetes-preserve-unknown-fields': True,
                  'description': 'Container resources of the Job (core/v1 ResourceRequirements).'},
    'activeDeadlineSeconds': {'type': 'integer', 'minimum': 1},
}
RUN_STATUS = {
    'phase': s(enum=['New', 'InProgress', 'Completed', 'PartiallyFailed', 'Failed']),
    'startTime': s(format='date-time'), 'completionTime': s(format='date-time'),
    'snapshotID': s(), 'jobName': s(),
    'filesNew': i64(), 'filesChanged': i64(), 'filesUnchanged': i64(),
    'bytesRead': i64(), 'bytesAdded': i64(),
    'progress': obj({'bytesDone': i64(), 'bytesTotal': i64()}),
    'errors': {'type': 'integer', 'minimum': 0}, 'warnings': {'type': 'integer', 'minimum': 0},
    'message': s(), 'observedGeneration': i64(), 'conditions': CONDITIONS,
}

def crd(kind, plural, short, spec, status, required_spec, columns):
    return {
        'apiVersion': 'apiextensions.k8s.io/v1',
        'kind': 'CustomResourceDefinition',
        'metadata': {'name': f'{plural}.coffer.dev'},
        'spec': {
            'group': 'coffer.dev',
            'names': {'kind': kind, 'listKind': kind + 'List', 'plural': plural,
                      'singular': kind.lower(), 'shortNames': [short], 'categories': ['coffer']},
            'scope': 'Namespaced',
            'versions': [{
                'name': 'v1alpha1', 'served': True, 'storage': True,
                'subresources': {'status': {}},
                'additionalPrinterColumns': columns + [
                    {'name': 'Age', 'type': 'date', 'jsonPath': '.metadata.creationTimestamp'}],
                'schema': {'openAPIV3Schema': obj({
                    'apiVersion': s(), 'kind': s(), 'metadata': {'type': 'object'},
                    'spec': obj(spec, required_spec),
                    'status': obj(status)}, ['spec'])},
            }],
        },
    }

CRDS = [
    crd('Repository', 'repositories', 'crepo', {
        'url': s('Repository location: /path, s3://HOST[:PORT]/BUCKET/PREFIX, s3:BUCKET/PREFIX '
                 'or sftp://USER@HOST[:PORT]/PATH (doc/storage.md).', minLength=1),
        'options': {'type': 'object', 'additionalProperties': {'type': 'string'},
                    'description': 'Storage options (coffer -o KEY=VALUE), e.g. s3.region.'},
        'passwordSecretRef': SECRET_KEY_REF,
        'credentialsSecretRef': obj(SECRET_REF['properties'], ['name'],
                                    desc='Secret whose keys become coffer\'s environment '
                                         '(AWS_ACCESS_KEY_ID, ...), never arguments.'),
        'caSecretRef': SECRET_KEY_REF,
        'knownHostsSecretRef': SECRET_KEY_REF,
        'validationInterval': {**DURATION, 'default': '1h'},
    }, {
        'phase': s(enum=['Available', 'Unavailable']),
        'lastValidationTime': s(format='date-time'),
        'sizeBytes': i64(minimum=0), 'snapshots': i64(minimum=0), 'message': s(),
        'observedGeneration': i64(), 'conditions': CONDITIONS,
    }, ['url', 'passwordSecretRef'], [
        {'name': 'URL', 'type': 'string', 'jsonPath': '.spec.url'},
        {'name': 'Phase', 'type': 'string', 'jsonPath': '.status.phase'},
        {'name': 'Validated', 'type': 'date', 'jsonPath': '.status.lastValidationTime'},
    ]),
    crd('BackupSchedule', 'backupschedules', 'cbs', {
        'schedule': s('Cron expression (5 fields or @daily...).', minLength=1),
        'timeZone': s('IANA time zone, e.g. Europe/Berlin (default UTC).'),
        'paused': {'type': 'boolean'},
        'concurrencyPolicy': s(enum=['Forbid', 'Replace']),
        **RUN_SPEC,
    }, {
        'lastScheduleTime': s(format='date-time'),
        'lastSuccessfulTime': s(format='date-time'),
        'lastFailureTime': s(format='date-time'),
        'lastSnapshotID': s(), 'lastBackup': s(), 'cronJobName': s(),
        'observedGeneration': i64(), 'conditions': CONDITIONS,
    }, ['schedule', 'target', 'repositories'], [
        {'name': 'Schedule', 'type': 'string', 'jsonPath': '.spec.schedule'},
        {'name': 'Type', 'type': 'string', 'jsonPath': '.spec.target.type'},
        {'name': 'Paused', 'type': 'boolean', 'jsonPath': '.spec.paused'},
        {'name': 'Last Success', 'type': 'date', 'jsonPath': '.status.lastSuccessfulTime'},
    ]),
    crd('Backup', 'backups', 'cbk', {
        **{k: v for k, v in RUN_SPEC.items()},
        'scheduleRef': s('Take the spec of this BackupSchedule (a manual trigger).'),
    }, RUN_STATUS, [], [
        {'name': 'Phase', 'type': 'string', 'jsonPath': '.status.phase'},
        {'name': 'Snapshot', 'type': 'string', 'jsonPath': '.status.snapshotID'},
        {'name': 'Started', 'type': 'date', 'jsonPath': '.status.startTime'},
        {'name': 'Completed', 'type': 'date', 'jsonPath': '.status.completionTime'},
    ]),
    crd('Restore', 'restores', 'crs', {
        'backupRef': s('Restore the snapshot this Backup made.'),
        'snapshot': s('A snapshot id or "latest" (with repository).'),
        'repository': s('A Repository object in this namespace.'),
        'target': obj({
            'pvc': s('Restore files into this PersistentVolumeClaim.'),
            'path': s('Directory inside the claim.'),
            'inPlace': {'type': 'boolean'},
            'postgres': obj({**CONN, 'database': s(), 'clean': {'type': 'boolean'},
                             'jobs': {'type': 'integer', 'minimum': 1}}),
            'mysql': obj({**CONN, 'database': s()}),
            'ldap': obj({'method': s(enum=['slapadd', 'ldapadd']), 'uri': s(), 'bindDN': s(),
                         'passwordSecretRef': SECRET_KEY_REF}),
            'namespaceMapping': {'type': 'object', 'additionalProperties': {'type': 'string'}},
            'includeKinds': arr(s()), 'excludeKinds': arr(s()),
            'existing': s(enum=['skip', 'update']),
        }),
        'include': arr(s()),
    }, {**RUN_STATUS, 'items': arr(obj({'name': s(), 'kind': s(), 'namespace': s(),
                                         'result': s(), 'message': s()}))},
        [], [
        {'name': 'Phase', 'type': 'string', 'jsonPath': '.status.phase'},
        {'name': 'Snapshot', 'type': 'string', 'jsonPath': '.status.snapshotID'},
        {'name': 'Completed', 'type': 'date', 'jsonPath': '.status.completionTime'},
    ]),
]

# ---- a small YAML writer -----------------------------------------------------------------
PLAIN = re.compile(r'^[A-Za-z_./][A-Za-z0-9_./ -]*$')
RESERVED = {'true', 'false', 'yes', 'no', 'on', 'off', 'null', 'y', 'n', '~'}

def scalar(v):
    if v is True:
        return 'true'
    if v is False:
        return 'false'
    if isinstance(v, (int, float)):
        return str(v)
    if PLAIN.match(v) and v.lower() not in RESERVED and not v.endswith(' ') and ': ' not in v:
        return v
    return "'" + v.replace("'", "''") + "'"

def emit(v, ind=0):
    pad = ' ' * ind
    out = []
    if isinstance(v, dict):
        for k, x in v.items():
            if isinstance(x, (dict, list)) and x:
                out.append(f'{pad}{scalar(k)}:')
                out += emit(x, ind + 2)
            else:
                out.append(f'{pad}{scalar(k)}: {flow(x)}')
    else:
        for x in v:
            sub = emit(x, ind + 2) if isinstance(x, (dict, list)) and x else [' ' * (ind + 2) + flow(x)]
            out.append(pad + '- ' + sub[0][ind + 2:])
            out += sub[1:]
    return out

def flow(x):
    if isinstance(x, dict):
        return '{}'
    if isinstance(x, list):
        return '[]'
    return scalar(x)

def main():
    check = '--check' in sys.argv[1:]
    stale = []
    chart = os.path.join(HERE, '..', 'helm', 'coffer', 'crds')
    outputs = [(c, d) for c in CRDS for d in (HERE, chart)]
    for c, d in outputs:
        name = os.path.normpath(os.path.join(d, f"coffer.dev_{c['spec']['names']['plural']}.yaml"))
        text = (f"# {c['spec']['names']['kind']} (coffer.dev/v1alpha1) -- generated by "
                "deploy/crds/gen.py; edit that, not this file.\n" + '\n'.join(emit(c)) + '\n')
        old = open(name).read() if os.path.exists(name) else None
        if old != text:
            stale.append(name)
            if not check:
                open(name, 'w').write(text)
    if check and stale:
        print('stale, run python3 deploy/crds/gen.py:', *stale, file=sys.stderr)
        return 1
    return 0

if __name__ == '__main__':
    sys.exit(main())
