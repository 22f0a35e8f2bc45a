/* The options every command shares, the usage text and failure messages. */
#include "config.h"

#include <getopt.h>
#include <limits.h>
#include <string.h>

#include "base/parse_number.h"
#include "cli.h"
#include "model/prediction_json.h"

const char *const cli_program = "cultivate-ml";

void cli_usage(FILE *out) {
    fprintf(out,
            "Usage: %s COMMAND [OPTIONS]\n"
            "\n"
            "Commands:\n"
            "  train    --model classic|ensemble [--data FILE] [--out DIR] [--seed N] [--folds K] "
            "[--json]\n"
            "           train on a text,label CSV (default: the bundled data), print the metrics,\n"
            "           write TYPE_VERSION.model and point TYPE_latest.model at it;\n"
            "           --measure FILE [--by COLUMN] then scores it on FILE (never fitted on);\n"
            "           --non-questions FILE|none: the question detector's negatives\n"
            "  evaluate --model FILE --data FILE [--by COLUMN] [--json]\n"
            "           score a model file on a labelled CSV\n"
            "  classify --model FILE [--json] [TEXT...]\n"
            "           classify each TEXT, or each line of standard input\n"
            "  analyze  --model FILE [--json|--csv] TRANSCRIPT\n"
            "           the questions of a lesson transcript (.vtt, .srt, Whisper .json, or\n"
            "           plain text) with times and labels, then the summary\n"
            "  info     [--json] FILE\n"
            "           describe a model file\n"
            "  upload   [--latest] [--json] FILE\n"
            "           upload a model file to the blob store as TYPE/VERSION.model; with\n"
            "           --latest also point TYPE_latest.model at it\n"
            "  download [--out DIR] [--json] TYPE [VERSION]\n"
            "           download the latest (or VERSION) model of TYPE from the blob store,\n"
            "           verified, into DIR (default: the current directory)\n"
            "  list     [--json] [TYPE]\n"
            "           list the model versions in the blob store\n"
            "  train ... --upload\n"
            "           also upload the new version and its data; move TYPE_latest.model to it\n"
            "  feedback export|counts [--state-dir DIR] [--out FILE]\n"
            "           the service's stored corrections as a text,label CSV, or counted\n"
            "  state migrate|check [--config FILE]\n"
            "           apply the shared state's pending schema migrations, or check them\n"
            "\n"
            "Options:\n"
            "  --connection-string S  blob store (default: $AZURE_STORAGE_CONNECTION_STRING)\n"
            "  --container NAME       container (default: $AZURE_STORAGE_CONTAINER, ml-models)\n"
            "  -h, --help     show this help\n"
            "  -V, --version  show the version\n"
            "\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n",
            cli_program);
}

int cli_fail(const char *what, cml_err err, const cml_diag *diag) {
    fprintf(stderr, "%s: %s: %s%s%s\n", cli_program, what, cml_strerror(err),
            diag && diag->msg[0] ? ": " : "", diag && diag->msg[0] ? diag->msg : "");
    return EXIT_FAILURE;
}

const char *cli_default_data(void) {
    const char *env = getenv("CML_DATA");
    return env && *env ? env : CML_DATADIR "/questions.csv";
}

/* Parses the options shared by every command; returns 0 or EXIT_USAGE. */
int cli_parse_args(int argc, char **argv, cli_args *a) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"data", required_argument, NULL, 'd'},
        {"out", required_argument, NULL, 'o'},
        {"seed", required_argument, NULL, 's'},
        {"folds", required_argument, NULL, 'k'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"job", required_argument, NULL, 'J'},
        {"state-dir", required_argument, NULL, 'S'},
        {"param", required_argument, NULL, 'p'},
        {"retain", required_argument, NULL, 'r'},
        {"connection-string", required_argument, NULL, 'C'},
        {"container", required_argument, NULL, 'c'},
        {"upload", no_argument, NULL, 'U'},
        {"latest", no_argument, NULL, 'L'},
        {"by", required_argument, NULL, 'B'},
        {"csv", no_argument, NULL, 'V'},
        {"measure", required_argument, NULL, 'M'},
        {"non-questions", required_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof(*a));
    a->seed = 42;
    a->folds = 5;
    a->retain = 10;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:d:o:s:k:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            a->model = optarg;
            break;
        case 'd':
            a->data = optarg;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 's':
            if (!cml_parse_uint(optarg, &a->seed)) {
                fprintf(stderr, "%s: --seed wants a non-negative integer\n", cli_program);
                return EXIT_USAGE;
            }
            a->seed_set = true;
            break;
        case 'J':
            a->job = optarg;
            break;
        case 'B':
            a->by = optarg;
            break;
        case 'V':
            a->csv = true;
            break;
        case 'N':
            a->non_questions = optarg;
            break;
        case 'M':
            if (a->n_measure == sizeof(a->measure) / sizeof(a->measure[0])) {
                fprintf(stderr, "%s: --measure at most 4 times\n", cli_program);
                return EXIT_USAGE;
            }
            a->measure[a->n_measure++] = optarg;
            break;
        case 'S':
            a->state_dir = optarg;
            break;
        case 'p':
            if (a->n_params == MAX_PARAMS || strchr(optarg, '=') == NULL) {
                fprintf(stderr, "%s: --param wants KEY=VALUE (at most %d)\n", cli_program,
                        MAX_PARAMS);
                return EXIT_USAGE;
            }
            a->params[a->n_params++] = optarg;
            break;
        case 'r':
            if (!cml_parse_int(optarg, 1, LLONG_MAX, &a->retain)) {
                fprintf(stderr, "%s: --retain wants a positive integer\n", cli_program);
                return EXIT_USAGE;
            }
            break;
        case 'k':
            if (!cml_parse_int(optarg, 0, 20, &a->folds) || a->folds == 1) {
                fprintf(stderr, "%s: --folds wants 0 (none) or 2 to 20\n", cli_program);
                return EXIT_USAGE;
            }
            a->folds_set = true;
            break;
        case 'j':
            a->json = true;
            break;
        case 'C':
            a->conn = optarg;
            break;
        case 'c':
            a->container = optarg;
            break;
        case 'U':
            a->upload = true;
            break;
        case 'L':
            a->latest = true;
            break;
        case 'h':
            cli_usage(stdout);
            exit(EXIT_SUCCESS);
        default:
            cli_usage(stderr);
            return EXIT_USAGE;
        }
    }
    a->first_operand = optind;
    return 0;
}
