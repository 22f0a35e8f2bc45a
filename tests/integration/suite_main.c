#include "config.h"

#include "suite_main.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static Suite *find(const char *name) {
    for (size_t i = 0; i < integration_n_suites; i++)
        if (strcmp(integration_suites[i].name, name) == 0)
            return integration_suites[i].make();
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    SRunner *sr = NULL;
    for (int i = 1; i < argc || (argc == 1 && i == 1); i++) {
        const char *name = argc == 1 ? integration_suites[0].name : argv[i];
        Suite *s = find(name);
        if (s == NULL) {
            fprintf(stderr, "%s: unknown suite %s\n", integration_program, name);
            if (sr)
                srunner_free(sr);
            curl_global_cleanup();
            return 2;
        }
        if (sr == NULL)
            sr = srunner_create(s);
        else
            srunner_add_suite(sr, s);
        if (argc == 1)
            break;
    }
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
