/* `cultivate-ml analyze`: a lesson transcript's questions with times and labels, and a summary. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "base/cml_alloc.h"
#include "base/file_io.h"
#include "cli.h"
#include "model/model_file.h"
#include "model/transcript_analysis.h"

/* The transcript format of a file, by its extension (plain text when none matches). */
static cml_transcript_format format_of_path(const char *path) {
    const char *dot = strrchr(path, '.');
    if (dot != NULL && strcasecmp(dot, ".vtt") == 0)
        return CML_TRANSCRIPT_VTT;
    if (dot != NULL && strcasecmp(dot, ".srt") == 0)
        return CML_TRANSCRIPT_SRT;
    if (dot != NULL && strcasecmp(dot, ".json") == 0)
        return CML_TRANSCRIPT_WHISPER_JSON;
    return CML_TRANSCRIPT_PLAIN;
}

static void print_time(double s) {
    if (isnan(s))
        printf("%9s", "-");
    else
        printf("%02d:%02d:%02d", (int)(s / 3600), (int)fmod(s / 60, 60), (int)fmod(s, 60));
    printf(" ");
}

/* A CSV field with RFC 4180 quoting. */
static void csv_field(const char *s, bool last) {
    if (s == NULL)
        s = "";
    bool quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote) {
        putchar('"');
        for (; *s; s++) {
            if (*s == '"')
                putchar('"');
            putchar(*s);
        }
        putchar('"');
    } else {
        fputs(s, stdout);
    }
    putchar(last ? '\n' : ',');
}

static void print_analysis(const cml_model *m, const cml_transcript *t, const cml_analysis *a,
                           bool csv) {
    json_object *o = cml_analysis_json(m, t, a), *sum, *v;
    json_object_object_get_ex(o, "summary", &sum);
    if (csv) {
        printf("index,start_s,end_s,speaker,text,classification,confidence\n");
        for (size_t i = 0; i < a->n; i++) {
            const cml_found_question *q = &a->questions[i];
            char num[3][32];
            snprintf(num[0], sizeof num[0], "%zu", i);
            snprintf(num[1], sizeof num[1], isnan(q->start_s) ? "" : "%.3f", q->start_s);
            snprintf(num[2], sizeof num[2], isnan(q->end_s) ? "" : "%.3f", q->end_s);
            csv_field(num[0], false);
            csv_field(num[1], false);
            csv_field(num[2], false);
            csv_field(q->speaker, false);
            csv_field(q->text, false);
            csv_field(m->labels[q->label], false);
            snprintf(num[0], sizeof num[0], "%.4f", q->confidence);
            csv_field(num[0], true);
        }
    } else {
        printf("%5s %-9s%-9s %-12s %-4s %6s  %s\n", "#", "start", " end", "speaker", "label",
               "conf", "question");
        for (size_t i = 0; i < a->n; i++) {
            const cml_found_question *q = &a->questions[i];
            printf("%5zu ", i);
            print_time(q->start_s);
            print_time(q->end_s);
            printf("%-12.12s %-4s %6.3f  %s\n", q->speaker ? q->speaker : "-", m->labels[q->label],
                   q->confidence, q->text);
        }
        printf("summary:");
        json_object_object_foreach(sum, key, val) {
            if (strcmp(key, "by_speaker") == 0)
                continue;
            printf(" %s=%s", key, val ? json_object_to_json_string(val) : "null");
        }
        printf("\n");
        if (json_object_object_get_ex(sum, "by_speaker", &v)) {
            json_object_object_foreach(v, name, e) {
                printf("  %s: %s\n", name,
                       json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
            }
        }
    }
    json_object_put(o);
}

int cmd_analyze(int argc, char **argv) {
    cli_args a;
    cml_diag diag = {{0}};
    cml_model *m = NULL;
    cml_transcript *t = NULL;
    cml_analysis *an = NULL;
    cml_feature_scratch *s = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = cli_parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.model == NULL || a.first_operand != argc - 1) {
        fprintf(stderr, "%s analyze: needs --model FILE and one TRANSCRIPT\n", cli_program);
        return EXIT_USAGE;
    }
    const char *path = argv[a.first_operand];
    cml_err err = cml_model_load(a.model, &m, &diag);
    if (err != CML_OK)
        return cli_fail(a.model, err, &diag);
    if ((err = cml_read_file(path, (size_t)64 << 20, &buf, &len, &diag)) != CML_OK ||
        (err = cml_transcript_parse((const char *)buf, len, format_of_path(path), NULL, &t,
                                    &diag)) != CML_OK) {
        rc = cli_fail(path, err, &diag);
        goto done;
    }
    if ((s = cml_feature_scratch_new()) == NULL ||
        (err = cml_transcript_analyze(m, s, t, NULL, &an, &diag)) != CML_OK) {
        rc = cli_fail("analysis failed", s ? err : CML_ERR_NOMEM, &diag);
        goto done;
    }
    if (a.json) {
        json_object *o = cml_analysis_json(m, t, an);
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else {
        print_analysis(m, t, an, a.csv);
    }
    rc = EXIT_SUCCESS;
done:
    cml_analysis_free(an);
    cml_transcript_free(t);
    cml_feature_scratch_free(s);
    cml_free(buf);
    cml_model_release(m);
    return rc;
}
