/*
 * fuzz_kubeconfig.c -- libFuzzer target for the kubeconfig parser (k8s/kubeconfig.c over
 * k8s/yaml.c), the current context and a named one; and for the ExecCredential parser.
 */
#include "common/error.h"
#include "k8s/execcred.h"
#include "k8s/kubeconfig.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    k8s_config_t c;
    if (k8s_kubeconfig_parse((const char *)data, size, "/fuzz/kubeconfig", NULL, &c) == 0)
        k8s_config_release(&c);
    if (k8s_kubeconfig_parse((const char *)data, size, "fuzz", "prod", &c) == 0)
        k8s_config_release(&c);
    k8s_cred_t cred;
    if (k8s_exec_parse((const char *)data, size, "fuzz", &cred) == 0)
        k8s_cred_release(&cred);
    err_clear();
    return 0;
}
