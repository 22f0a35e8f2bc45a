/* Normalisation of transcribed speech (text/text_normalize.c). */
#include "config.h"

#include "text/text_normalize.h"
#include "unit.h"

static const struct {
    const char *in, *want;
} normalise_cases[] = {
    {"What's THAT?", "what is that"},
    {"um so uh what happens if you- if you pour it", "what happens if you pour it"},
    {"is it is it heavy", "is it heavy"},
    {"whatcha gonna build", "what are you going to build"},
    {"Okay so, d'you wanna go?", "do you want to go"},
    {"Don\xE2\x80\x99t you like it?", "do not you like it"},
    {"\xE2\x80\x9CWhy?\xE2\x80\x9D", "why"},
    {"Maya's hat. Where'd it go?", "maya hat|where did it go"},
    {"the the red one", "the red one"},
    {"isnt it cool", "is not it cool"},
    {"What colour is it", "what color is it"},
    {"I wonder why... the ice melted", "i wonder why the ice melted"},
    {"wh\xE2\x80\x94 what do you see", "what do you see"},
    {"it costs 2.50 dollars", "it costs 2.50 dollars"},
    {"ice-cream?", "ice cream"},
    {"", ""},
    {"???", ""},
};

START_TEST(test_normalise) {
    cml_normalized n = {0};
    char buf[256];
    ck_assert_int_eq(cml_normalize(normalise_cases[_i].in, strlen(normalise_cases[_i].in), &n),
                     CML_OK);
    cml_normalized_join(&n, buf, sizeof buf);
    ck_assert_str_eq(buf, normalise_cases[_i].want);
    cml_normalized_release(&n);
}
END_TEST

int main(void) {
    Suite *s = suite_create("text_normalize");
    TCase *tc = tcase_create("normalise");
    tcase_add_loop_test(tc, test_normalise, 0,
                        (int)(sizeof normalise_cases / sizeof normalise_cases[0]));
    suite_add_tcase(s, tc);
    return unit_run(s);
}
