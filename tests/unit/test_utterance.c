/* Utterance analysis: sentences of a clip with their offsets, and which are questions. */
#include "config.h"

#include "unit.h"
#include "text/utterance.h"

/*
 * Each case: a clip and its parts as they must come out, "|" between parts and a question in
 * brackets. Every shape of the issue: lead-ins, set-up statements, replies and echoes, second
 * questions, fillers, no punctuation, truncated questions, invitations.
 */
static const struct {
    const char *in, *want;
} cases[] = {
    {"the bucket over. So what do you think happened?",
     "the bucket over.|[So what do you think happened?]"},
    {"Look, it's all wet. Why is it wet?", "Look, it's all wet.|[Why is it wet?]"},
    {"What colour is the leaf? Green.", "[What colour is the leaf?]|Green."},
    {"How does it smell? Does it smell sweet?", "[How does it smell?]|[Does it smell sweet?]"},
    {"the bucket fell over so what do you think happened",
     "the bucket fell over|[so what do you think happened]"},
    {"okay so how come it sank", "[okay so how come it sank]"},
    {"Okay, where did you...", "[Okay, where did you...]"},
    {"what would\xE2\x80\xA6 so how come", "[what would\xE2\x80\xA6]|[so how come]"},
    {"you used lots of blue tell me about it", "you used lots of blue|[tell me about it]"},
    {"can you tell me how you built it", "[can you tell me how you built it]"},
    {"do you know what happened", "[do you know what happened]"},
    {"what color is it", "[what color is it]"},
    {"the tower fell down why did it fall", "the tower fell down|[why did it fall]"},
    {"i wonder why the ice melted", "[i wonder why the ice melted]"},
    {"Good job. I wonder what happens next", "Good job.|[I wonder what happens next]"},
    {"Why is it wet? Because it rained", "[Why is it wet?]|Because it rained"},
    {"is it is it heavy Maya", "[is it is it heavy Maya]"},
    {"It costs 2.50 dollars. Is that a lot?", "It costs 2.50 dollars.|[Is that a lot?]"},
    {"Put it here!\nWhat is that?", "Put it here!|[What is that?]"},
    {"Really?! Wow.", "[Really?!]|Wow."},
    {"", ""},
    {"  ...  ", ""},
};

static void render(const char *text, const cml_utterance *u, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < u->n_parts; i++) {
        const cml_utterance_part *p = &u->parts[i];
        used += (size_t)snprintf(buf + used, cap - used, "%s%s%.*s%s", i ? "|" : "",
                                 p->question ? "[" : "", (int)(p->end - p->start), text + p->start,
                                 p->question ? "]" : "");
    }
}

START_TEST(test_parts_and_offsets) {
    cml_utterance u;
    char got[1024];
    const char *in = cases[_i].in;
    cml_utterance_split(in, strlen(in), &u);
    render(in, &u, got, sizeof got);
    ck_assert_str_eq(got, cases[_i].want);
    size_t questions = 0;
    for (size_t i = 0; i < u.n_parts; i++) {
        ck_assert_uint_lt(u.parts[i].start, u.parts[i].end);
        ck_assert_uint_le(u.parts[i].end, strlen(in));
        if (i > 0)
            ck_assert_uint_le(u.parts[i - 1].end, u.parts[i].start);
        questions += u.parts[i].question;
    }
    ck_assert_uint_eq(questions, u.n_questions);
}
END_TEST

START_TEST(test_question_mark_is_recorded) {
    cml_utterance u;
    const char *in = "It fell. Did it break? yes";
    cml_utterance_split(in, strlen(in), &u);
    ck_assert_uint_eq(u.n_parts, 3);
    ck_assert(!u.parts[0].question_mark);
    ck_assert(u.parts[1].question_mark);
    ck_assert(!u.parts[2].question_mark);
}
END_TEST

START_TEST(test_long_text_keeps_its_tail) {
    /* More sentences than parts: the rest joins the last part, nothing is lost. */
    char text[4096] = "";
    for (int i = 0; i < CML_UTTERANCE_MAX_PARTS + 10; i++)
        strcat(text, "Is it red? ");
    cml_utterance u;
    cml_utterance_split(text, strlen(text), &u);
    ck_assert_uint_eq(u.n_parts, CML_UTTERANCE_MAX_PARTS);
    ck_assert_uint_eq(u.parts[u.n_parts - 1].end, strlen(text) - 1);
}
END_TEST

START_TEST(test_character_offsets) {
    /* "Look, it’s wet." holds a 3-byte apostrophe: offsets count characters, not bytes. */
    const char *in = "Look, it\xE2\x80\x99s wet. Why?";
    cml_utterance u;
    cml_utterance_split(in, strlen(in), &u);
    ck_assert_uint_eq(u.n_parts, 2);
    ck_assert_uint_eq(u.parts[1].start, 18);
    ck_assert_uint_eq(cml_utf8_offset(in, u.parts[1].start), 16);
    ck_assert_uint_eq(cml_utf8_offset(in, strlen(in)), 20);
}
END_TEST

int main(void) {
    Suite *s = suite_create("utterance");
    TCase *tc = tcase_create("split");
    tcase_add_loop_test(tc, test_parts_and_offsets, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_question_mark_is_recorded);
    tcase_add_test(tc, test_long_text_keeps_its_tail);
    tcase_add_test(tc, test_character_offsets);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
