/* Transcript parsers: WebVTT, SRT, Whisper JSON and plain text, and what they refuse. */
#include "config.h"

#include <math.h>

#include "text/transcript.h"
#include "unit.h"

static cml_transcript *parse_ok(const char *text, cml_transcript_format f) {
    cml_transcript *t = NULL;
    cml_diag d = {{0}};
    cml_err err = cml_transcript_parse(text, strlen(text), f, NULL, &t, &d);
    ck_assert_msg(err == CML_OK, "refused: %s", d.msg);
    return t;
}

/* Refused with a message that holds want (a line number, say). */
static void parse_bad(const char *text, cml_transcript_format f, const char *want) {
    cml_transcript *t = NULL;
    cml_diag d = {{0}};
    ck_assert_int_ne(cml_transcript_parse(text, strlen(text), f, NULL, &t, &d), CML_OK);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(d.msg, want) != NULL, "message '%s' lacks '%s'", d.msg, want);
}

START_TEST(test_vtt) {
    const char *vtt = "\xEF\xBB\xBFWEBVTT - a lesson\r\n"
                      "Kind: captions\r\n"
                      "\r\n"
                      "NOTE written by hand\r\n"
                      "over two lines\r\n"
                      "\r\n"
                      "intro\r\n"
                      "00:01.000 --> 00:03.500 align:start position:10%\r\n"
                      "<v Ms. Rivera>What do you think\r\n"
                      "will happen?</v>\r\n"
                      "\r\n"
                      "01:00:04.250 --> 01:00:05.000\r\n"
                      "<v.loud Child>It <i>sinks</i> &amp; floats!\r\n";
    cml_transcript *t = parse_ok(vtt, CML_TRANSCRIPT_VTT);
    ck_assert(t->timed);
    ck_assert_uint_eq(t->n, 2);
    ck_assert_double_eq_tol(t->segments[0].start_s, 1.0, 1e-9);
    ck_assert_double_eq_tol(t->segments[0].end_s, 3.5, 1e-9);
    ck_assert_str_eq(t->segments[0].speaker, "Ms. Rivera");
    ck_assert_str_eq(t->segments[0].text, "What do you think will happen?");
    ck_assert_uint_eq(t->segments[0].line, 8);
    ck_assert_double_eq_tol(t->segments[1].start_s, 3604.25, 1e-9);
    ck_assert_str_eq(t->segments[1].speaker, "Child");
    ck_assert_str_eq(t->segments[1].text, "It sinks & floats!");
    cml_transcript_free(t);
}
END_TEST

/* A voice tag cut off after its space (fuzzing found the name's length going negative). */
START_TEST(test_vtt_cut_voice_tag) {
    const char *texts[] = {"WEBVTT\n\n00:01.000 --> 00:02.000\nhi <v \n",
                           "WEBVTT\n\n00:01.000 --> 00:02.000\nhi <v.x \n",
                           "WEBVTT\n\n00:01.000 --> 00:02.000\nhi <v  >\n"};
    for (size_t i = 0; i < 3; i++) {
        /* Exactly sized copies, so a sanitizer sees any read past the end. */
        size_t n = strlen(texts[i]);
        char *copy = malloc(n);
        memcpy(copy, texts[i], n);
        cml_transcript *t = NULL;
        cml_diag d = {{0}};
        ck_assert_int_eq(cml_transcript_parse(copy, n, CML_TRANSCRIPT_VTT, NULL, &t, &d), CML_OK);
        ck_assert_str_eq(t->segments[0].text, "hi");
        ck_assert_ptr_null(t->segments[0].speaker);
        cml_transcript_free(t);
        free(copy);
    }
}
END_TEST

START_TEST(test_vtt_refusals) {
    parse_bad("WEBVTX\n\n00:01.000 --> 00:02.000\nhi\n", CML_TRANSCRIPT_VTT, "line 1");
    parse_bad("WEBVTT\n\n00:01.000 -> 00:02.000\nhi\n", CML_TRANSCRIPT_VTT, "line 3");
    parse_bad("WEBVTT\n\n00:01.000 --> 00:02.00\nhi\n", CML_TRANSCRIPT_VTT, "line 3");
    parse_bad("WEBVTT\n\n00:61.000 --> 00:62.000\nhi\n", CML_TRANSCRIPT_VTT, "timing");
    parse_bad("WEBVTT\n\n00:03.000 --> 00:02.000\nhi\n", CML_TRANSCRIPT_VTT, "ends before");
    parse_bad("WEBVTT\n\n00:05.000 --> 00:06.000\nhi\n\n00:01.000 --> 00:02.000\nho\n",
              CML_TRANSCRIPT_VTT, "line 6: cues out of order");
    parse_bad("WEBVTT\n\n00:01.000 --> 00:04.000\nhi\n\n00:03.000 --> 00:05.000\nho\n",
              CML_TRANSCRIPT_VTT, "overlaps");
    parse_bad("WEBVTT\n\n00:01.000 --> 00:02.000\n<i></i>\n", CML_TRANSCRIPT_VTT, "without text");
    parse_bad("WEBVTT\n\n00:01.000 --> 00:02.000\n\n", CML_TRANSCRIPT_VTT, "without text");
    parse_bad("WEBVTT\n\nan id\n", CML_TRANSCRIPT_VTT, "line 3");
    parse_bad("WEBVTT\n\n00:01.000 --> 00:02.000\n\xC3\x28\n", CML_TRANSCRIPT_VTT, "UTF-8");
}
END_TEST

START_TEST(test_srt) {
    const char *srt = "1\n00:00:01,000 --> 00:00:02,000\n<i>Is it heavy?</i>\n\n"
                      "2\n00:00:02,500 --> 00:00:04,000 X1:0\nTell me about\nyour tower.\n";
    cml_transcript *t = parse_ok(srt, CML_TRANSCRIPT_SRT);
    ck_assert_uint_eq(t->n, 2);
    ck_assert_ptr_null(t->segments[0].speaker);
    ck_assert_str_eq(t->segments[0].text, "Is it heavy?");
    ck_assert_str_eq(t->segments[1].text, "Tell me about your tower.");
    ck_assert_double_eq_tol(t->segments[1].start_s, 2.5, 1e-9);
    cml_transcript_free(t);
    parse_bad("one\n00:00:01,000 --> 00:00:02,000\nhi\n", CML_TRANSCRIPT_SRT, "line 1");
    /* SRT always has hours. */
    parse_bad("1\n00:01,000 --> 00:02,000\nhi\n", CML_TRANSCRIPT_SRT, "line 2");
    parse_bad("1\n00:00:01,000 --> 00:00:02,000\n\n", CML_TRANSCRIPT_SRT, "without text");
}
END_TEST

START_TEST(test_whisper_json) {
    const char *j = "{\"text\": \"all\", \"segments\": [{\"id\": 0, \"start\": 0.0, \"end\": 1.5,"
                    " \"text\": \" Why is it wet?\", \"tokens\": [1, 2], \"speaker\": \"T\"},"
                    " {\"start\": 1.5, \"end\": 1.5, \"text\": \"  \"},"
                    " {\"start\": 2, \"end\": 3, \"text\": \"Because\"}]}";
    cml_transcript *t = parse_ok(j, CML_TRANSCRIPT_WHISPER_JSON);
    ck_assert_uint_eq(t->n, 2); /* the empty segment is silence */
    ck_assert_str_eq(t->segments[0].text, "Why is it wet?");
    ck_assert_str_eq(t->segments[0].speaker, "T");
    ck_assert_ptr_null(t->segments[1].speaker);
    ck_assert_double_eq_tol(t->segments[1].end_s, 3.0, 1e-9);
    cml_transcript_free(t);
    parse_bad("{\"segments\": 3}", CML_TRANSCRIPT_WHISPER_JSON, "segments");
    parse_bad("{\"segments\": [{\"start\": 1, \"end\": 0, \"text\": \"x\"}]}",
              CML_TRANSCRIPT_WHISPER_JSON, "segment 0 ends before");
    parse_bad("{\"segments\": [{\"start\": \"1\", \"end\": 2, \"text\": \"x\"}]}",
              CML_TRANSCRIPT_WHISPER_JSON, "segment 0 needs");
    parse_bad("{\"segments\": [{\"start\": 1e999, \"end\": 2, \"text\": \"x\"}]}",
              CML_TRANSCRIPT_WHISPER_JSON, "segment 0");
    parse_bad("{\"segments\": [{\"start\": 0, \"end\": 1, \"text\": \"a\\u0000b\"}]}",
              CML_TRANSCRIPT_WHISPER_JSON, "NUL");
    parse_bad("{\"segments\": []} {}", CML_TRANSCRIPT_WHISPER_JSON, "one JSON object");
}
END_TEST

START_TEST(test_plain) {
    cml_transcript *t =
        parse_ok("Good morning.\r\n\r\n  What is this?  \nA leaf\n", CML_TRANSCRIPT_PLAIN);
    ck_assert(!t->timed);
    ck_assert_uint_eq(t->n, 3);
    ck_assert(isnan(t->segments[1].start_s));
    ck_assert_str_eq(t->segments[1].text, "What is this?");
    ck_assert_uint_eq(t->segments[1].line, 3);
    cml_transcript_free(t);
}
END_TEST

START_TEST(test_limits_and_types) {
    cml_transcript_limits lim = {.max_segments = 2};
    cml_transcript *t = NULL;
    cml_diag d = {{0}};
    const char *text = "a\nb\nc\n";
    ck_assert_int_eq(cml_transcript_parse(text, strlen(text), CML_TRANSCRIPT_PLAIN, &lim, &t, &d),
                     CML_ERR_DATA);
    ck_assert_ptr_null(t);
    cml_transcript_format f;
    ck_assert_int_eq(cml_transcript_format_of("text/vtt; charset=utf-8", &f), CML_OK);
    ck_assert_int_eq(f, CML_TRANSCRIPT_VTT);
    ck_assert_int_eq(cml_transcript_format_of("application/x-subrip", &f), CML_OK);
    ck_assert_int_eq(f, CML_TRANSCRIPT_SRT);
    ck_assert_int_eq(cml_transcript_format_of("TEXT/SRT", &f), CML_OK);
    ck_assert_int_eq(f, CML_TRANSCRIPT_SRT);
    ck_assert_int_eq(cml_transcript_format_of("application/json", &f), CML_OK);
    ck_assert_int_eq(f, CML_TRANSCRIPT_WHISPER_JSON);
    ck_assert_int_eq(cml_transcript_format_of("text/plain", &f), CML_OK);
    ck_assert_int_eq(f, CML_TRANSCRIPT_PLAIN);
    ck_assert_int_eq(cml_transcript_format_of("text/html", &f), CML_ERR_UNSUPPORTED);
    ck_assert_int_eq(cml_transcript_format_of(NULL, &f), CML_ERR_UNSUPPORTED);
    ck_assert_str_eq(cml_transcript_format_name(CML_TRANSCRIPT_SRT), "srt");
}
END_TEST

int main(void) {
    Suite *s = suite_create("transcript");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_vtt);
    tcase_add_test(tc, test_vtt_refusals);
    tcase_add_test(tc, test_vtt_cut_voice_tag);
    tcase_add_test(tc, test_srt);
    tcase_add_test(tc, test_whisper_json);
    tcase_add_test(tc, test_plain);
    tcase_add_test(tc, test_limits_and_types);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
