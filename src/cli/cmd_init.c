/*
 * cmd_init.c -- `coffer init`: create a repository at -r REPO.
 *
 * Layer: cli. Options tune the format parameters recorded in config (chunk sizes, zstd level,
 * pack size); the defaults are the ones doc/format.md describes.
 */
#include "cli/cmds.h"
#include "cli/location.h"
#include "common/error.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf(
        "usage: coffer -r REPO init [--compression N] [--pack-size MIB] [--kdf argon2id|scrypt]\n"
        "  --compression N   zstd level 0-19 (0 = store raw), default 3\n"
        "  --pack-size MIB   target pack size in MiB (1-128), default 16\n"
        "  --kdf NAME        password KDF for the first key slot (default argon2id)\n"
        "  --skip-location-check  do not probe a remote location first (see\n"
        "                    `coffer check --location`)\n"
        "The password comes from COFFER_PASSWORD, COFFER_PASSWORD_FILE or the terminal.\n");
}

int cmd_init(cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"compression", required_argument, 0, 'c'},
                                         {"pack-size", required_argument, 0, 'p'},
                                         {"kdf", required_argument, 0, 'k'},
                                         {"skip-location-check", no_argument, 0, 'S'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    repo_params_t params;
    repo_params_default(&params);
    keyslot_kdf_t kdf;
    int rc = keyslot_kdf_from_env(&kdf);
    if (rc)
        return cli_fail(cli, rc);
    int c;
    bool probe = true;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        long v;
        switch (c) {
        case 'c':
            v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 19)
                return cli_usage("init", "--compression takes a zstd level from 0 to 19");
            params.compression = (int)v;
            break;
        case 'p':
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 128)
                return cli_usage("init", "--pack-size takes MiB from 1 to 128");
            params.pack_size = (uint32_t)v << 20;
            break;
        case 'k':
            if (strcmp(optarg, "argon2id") != 0 && strcmp(optarg, "scrypt") != 0)
                return cli_usage("init", "--kdf is argon2id or scrypt");
            kdf.name = strcmp(optarg, "scrypt") == 0 ? "scrypt" : "argon2id";
            break;
        case 'S':
            probe = false;
            break;
        case 'h':
            help();
            return EXIT_OK;
        default:
            return cli_usage("init", "unknown option");
        }
    }
    if (optind < argc)
        return cli_usage("init", "unexpected argument \"%s\"", argv[optind]);
    if (!cli->repo)
        return cli_usage("init", "no repository given: use -r/--repo or COFFER_REPOSITORY");
    /* A remote location is probed before anything is written, so a server that lacks what
     * coffer needs is found now, not halfway through the first backup. */
    if (probe && (rc = cli_location_check(cli, true, false, true)))
        return cli_fail(cli, err_ctx(rc, "not creating a repository at %s", cli->repo));
    char *pw = NULL;
    if ((rc = cli_get_password("password for the new repository: ", true, &pw)))
        return cli_fail(cli, rc);
    repo_t *r = NULL;
    storage_opts_t so = cli_storage_opts(cli);
    rc = repo_create_opts(cli->repo, &so, pw, &params, &kdf, &r);
    cli_free_password(pw);
    if (rc)
        return cli_fail(cli, rc);
    char hex[65];
    hex_encode(repo_id(r), 32, hex);
    if (cli->json)
        cli_json_line(json_pack("{s:s,s:s,s:s}", "message_type", "initialized", "id", hex,
                                "repository", cli->repo));
    else if (!cli->quiet)
        printf("created coffer repository %.10s at %s\n"
               "Keep the password safe: without it the data cannot be read.\n",
               hex, cli->repo);
    repo_close(r);
    return EXIT_OK;
}
