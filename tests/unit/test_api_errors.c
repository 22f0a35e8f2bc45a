/* The error table (fcgi/api_errors.c): every row filled, an error status, a code, a sentence. */
#include "config.h"

#include <stdio.h>

#include "api_errors.h"
#include "unit.h"

START_TEST(test_every_row_filled) {
    for (int e = 0; e < API_ERR__MAX; e++) {
        const api_error_info *i = &api_errors[e];
        ck_assert_msg(i->code != NULL && i->detail != NULL, "row %d is empty", e);
        ck_assert_msg(i->status >= 400 && i->status <= 599, "row %d: status %d", e, i->status);
        ck_assert_msg(i->code[0] && i->detail[0], "row %d: empty code or detail", e);
        /* A 503 says when to come back; no other row carries Retry-After. */
        if (i->status == HTTP_SERVICE_UNAVAILABLE)
            ck_assert_msg(i->extra_header && !strncmp(i->extra_header, "Retry-After: ", 13),
                          "row %d (%s): a 503 without Retry-After", e, i->code);
    }
}
END_TEST

START_TEST(test_codes_are_snake_case) {
    for (int e = 0; e < API_ERR__MAX; e++)
        for (const char *c = api_errors[e].code; *c; c++)
            ck_assert_msg((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_',
                          "row %d: code %s", e, api_errors[e].code);
}
END_TEST

int main(void) {
    Suite *s = suite_create("api_errors");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, test_every_row_filled);
    tcase_add_test(tc, test_codes_are_snake_case);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
