#include "config.h"

#include "text/utterance.h"

#include <pthread.h>
#include <string.h>

#include "base/word_table.h"

enum {
    W_WH = 1u << 0,      /* what, why, how ... */
    W_AUX = 1u << 1,     /* auxiliaries and modals that invert in a question */
    W_PRON = 1u << 2,    /* subjects that follow an inverted auxiliary */
    W_MARKER = 1u << 3,  /* discourse markers and fillers that open a clause */
    W_EMBED = 1u << 4,   /* words after which a wh-word starts an embedded clause */
    W_INVITE = 1u << 5,  /* verbs that open an invitation: tell me, describe ... */
    W_WH_NEXT = 1u << 6, /* words that follow a clause-opening wh-word */
    W_NO_SPLIT = 1u << 7 /* words after which an inverted auxiliary continues the clause */
};

static const char *const wh_words[] = {"what",  "what's", "whats",   "why",    "how",
                                       "how's", "where",  "where's", "who",    "who's",
                                       "which", "when",   "whose",   "whatcha"};
static const char *const aux_words[] = {
    "do",    "does",  "did",    "is",      "are",      "am",       "was",       "were",
    "can",   "could", "will",   "would",   "should",   "shall",    "may",       "might",
    "have",  "has",   "had",    "don't",   "doesn't",  "didn't",   "isn't",     "aren't",
    "can't", "won't", "wasn't", "weren't", "wouldn't", "couldn't", "shouldn't", "haven't"};
static const char *const pronouns[] = {
    "you", "it",    "we",    "they",  "he",     "she",     "that",     "this",     "there",
    "i",   "these", "those", "y'all", "anyone", "anybody", "somebody", "everybody"};
static const char *const markers[] = {"so",  "okay",  "ok",  "alright", "now",  "and",  "well",
                                      "oh",  "um",    "uh",  "mmm",     "hmm",  "yeah", "wow",
                                      "hey", "right", "ooh", "mm",      "look", "see",  "alright"};
static const char *const embed_words[] = {
    "know",   "wonder",  "tell",     "see",    "show", "think", "remember", "guess",  "ask",
    "about",  "of",      "that",     "for",    "at",   "to",    "me",       "is",     "are",
    "and",    "or",      "if",       "on",     "in",   "from",  "like",     "what",   "how",
    "why",    "where",   "who",      "notice", "sure", "idea",  "decide",   "figure", "imagine",
    "matter", "explain", "describe", "hear",   "learn"};
static const char *const invite_words[] = {"tell",    "describe", "explain", "show",
                                           "imagine", "wonder",   "let's",   "lets"};
static const char *const wh_next[] = {
    "do",     "does",    "did",      "is",     "are",   "was",    "were",  "can",   "could",
    "will",   "would",   "should",   "many",   "much",  "come",   "about", "if",    "kind",
    "else",   "happens", "happened", "happen", "color", "colour", "shape", "one",   "ones",
    "makes",  "made",    "else's",   "has",    "have",  "might",  "part",  "sound", "sounds",
    "animal", "number",  "letter",   "day",    "big",   "long",   "old",   "fast",  "far",
    "does",   "time",    "you",      "we",     "they",  "it"};
static const char *const no_split_after[] = {"what", "how", "why",   "where",  "who",     "which",
                                             "when", "and", "or",    "if",     "because", "that",
                                             "than", "so",  "cause", "'cause", "whatever"};

#define N_ITEMS(a) (sizeof(a) / sizeof((a)[0]))
static cml_word_slot class_slots[512];
static cml_word_table classes = {class_slots, N_ITEMS(class_slots), 0};
static pthread_once_t classes_once = PTHREAD_ONCE_INIT;

static void build_classes(void) {
    CML_WORD_TABLE_ADD_ARRAY(&classes, wh_words, W_WH);
    CML_WORD_TABLE_ADD_ARRAY(&classes, aux_words, W_AUX);
    CML_WORD_TABLE_ADD_ARRAY(&classes, pronouns, W_PRON);
    CML_WORD_TABLE_ADD_ARRAY(&classes, markers, W_MARKER);
    CML_WORD_TABLE_ADD_ARRAY(&classes, embed_words, W_EMBED);
    CML_WORD_TABLE_ADD_ARRAY(&classes, invite_words, W_INVITE);
    CML_WORD_TABLE_ADD_ARRAY(&classes, wh_next, W_WH_NEXT);
    CML_WORD_TABLE_ADD_ARRAY(&classes, no_split_after, W_NO_SPLIT);
}

/* Words of one sentence: lower-cased copies (long words cut) and their byte offsets. */
#define MAX_WORDS 96
#define WORD_CHARS 16
typedef struct words {
    size_t n;
    uint32_t start[MAX_WORDS];
    uint32_t bits[MAX_WORDS];
    char text[MAX_WORDS][WORD_CHARS];
} words;

static bool word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '\'' || c >= 0x80;
}

static void read_words(const char *text, size_t from, size_t to, words *w) {
    w->n = 0;
    for (size_t i = from; i < to && w->n < MAX_WORDS;) {
        if (!word_byte((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t k = 0, j = i;
        for (; j < to && word_byte((unsigned char)text[j]); j++) {
            char c = text[j];
            if (k < WORD_CHARS - 1)
                w->text[w->n][k++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        w->text[w->n][k] = '\0';
        w->start[w->n] = (uint32_t)i;
        w->bits[w->n] = cml_word_table_bits(&classes, w->text[w->n], k);
        w->n++;
        i = j;
    }
}

static bool is(const words *w, size_t i, const char *word) {
    return i < w->n && strcmp(w->text[i], word) == 0;
}

static bool has(const words *w, size_t i, uint32_t bits) {
    return i < w->n && (w->bits[i] & bits) != 0;
}

/* Whether the words from i open a question or an invitation. */
static bool opens_question(const words *w, size_t i) {
    if (has(w, i, W_WH))
        return true;
    if (has(w, i, W_AUX) && (has(w, i + 1, W_PRON) || has(w, i + 1, W_WH_NEXT)))
        return true;
    if (is(w, i, "tell") || is(w, i, "show"))
        return is(w, i + 1, "me") || is(w, i + 1, "us");
    if (is(w, i, "describe") || is(w, i, "explain") || is(w, i, "imagine"))
        return true;
    if (is(w, i, "let's") || is(w, i, "lets") || (is(w, i, "let") && is(w, i + 1, "us")))
        return is(w, i + 1, "think") || is(w, i + 1, "figure") || is(w, i + 2, "think") ||
               is(w, i + 1, "talk") || is(w, i + 1, "find");
    if (is(w, i, "i"))
        return is(w, i + 1, "wonder") || is(w, i + 1, "wondered");
    if (is(w, i, "i'm"))
        return is(w, i + 1, "curious") || is(w, i + 1, "wondering");
    return false;
}

/* The first word of the clause from i that is not a marker or filler. */
static size_t skip_markers(const words *w, size_t i) {
    while (i < w->n && has(w, i, W_MARKER))
        i++;
    return i;
}

/*
 * Where a new question starts inside a sentence with no question mark: before a marker that
 * leads into question word order, or before question word order itself when the words before
 * it cannot be the start of the same clause.
 */
static bool split_before(const words *w, size_t j) {
    if (j == 0 || skip_markers(w, 0) >= j)
        return false; /* only fillers before: the same clause */
    if (has(w, j, W_MARKER) && !has(w, j - 1, W_MARKER)) {
        size_t k = skip_markers(w, j);
        return k < w->n && opens_question(w, k) && !has(w, k, W_INVITE);
    }
    if (has(w, j - 1, W_MARKER))
        return false; /* the marker's own split is taken instead */
    if (has(w, j, W_WH))
        return has(w, j + 1, W_WH_NEXT) && !has(w, j - 1, W_EMBED) && !has(w, j - 1, W_AUX);
    if (has(w, j, W_AUX) && has(w, j + 1, W_PRON)) {
        for (size_t k = j >= 3 ? j - 3 : 0; k < j; k++)
            if (has(w, k, W_WH) || has(w, k, W_AUX))
                return false;
        return !has(w, j - 1, W_NO_SPLIT) && !has(w, j - 1, W_PRON);
    }
    if ((is(w, j, "tell") || is(w, j, "show")) && (is(w, j + 1, "me") || is(w, j + 1, "us")))
        return !has(w, j - 1, W_PRON) && !is(w, j - 1, "to") && !is(w, j - 1, "please");
    if (is(w, j, "i") && is(w, j + 1, "wonder"))
        return true;
    return false;
}

static void add_part(const char *text, size_t from, size_t to, bool qmark, bool question,
                     cml_utterance *out) {
    while (from < to && (text[from] == ' ' || text[from] == '\t' || text[from] == '\r' ||
                         text[from] == '\n' || text[from] == ',' || text[from] == '-'))
        from++;
    while (to > from && (text[to - 1] == ' ' || text[to - 1] == '\t' || text[to - 1] == '\r' ||
                         text[to - 1] == '\n' || text[to - 1] == ','))
        to--;
    size_t w = from;
    while (w < to && !word_byte((unsigned char)text[w]))
        w++;
    if (w == to)
        return; /* punctuation only */
    question = question || qmark;
    if (out->n_parts == CML_UTTERANCE_MAX_PARTS) {
        cml_utterance_part *last = &out->parts[out->n_parts - 1];
        out->n_questions += question && !last->question;
        last->end = (uint32_t)to;
        last->question_mark = qmark;
        last->question = last->question || question;
        return;
    }
    out->parts[out->n_parts++] = (cml_utterance_part){
        .start = (uint32_t)from, .end = (uint32_t)to, .question = question, .question_mark = qmark};
    out->n_questions += question;
}

/* Whether the words [from, to) of w open a question (its words past to unseen). */
static bool part_opens_question(words *w, size_t from, size_t to) {
    size_t n = w->n;
    w->n = to;
    bool q = opens_question(w, skip_markers(w, from));
    w->n = n;
    return q;
}

/* One sentence [from, to): split at clause-opening question word order, then added. */
static void add_sentence(const char *text, size_t from, size_t to, bool qmark, cml_utterance *out) {
    words w;
    read_words(text, from, to, &w);
    size_t start = from, first = 0;
    for (size_t j = 1; j < w.n; j++) {
        if (!split_before(&w, j))
            continue;
        add_part(text, start, w.start[j], false, part_opens_question(&w, first, j), out);
        start = w.start[j];
        first = j;
    }
    add_part(text, start, to, qmark, part_opens_question(&w, first, w.n), out);
}

static bool sentence_end(const char *text, size_t len, size_t i) {
    char c = text[i];
    if (c == '?' || c == '!' || c == ';' || c == '\n')
        return true;
    if (c != '.')
        return false;
    /* "2.5" is a number; the last dot of "..." ends a sentence, the others do not. */
    if (i > 0 && i + 1 < len && text[i - 1] >= '0' && text[i - 1] <= '9' && text[i + 1] >= '0' &&
        text[i + 1] <= '9')
        return false;
    return !(i + 1 < len && text[i + 1] == '.');
}

void cml_utterance_split(const char *text, size_t len, cml_utterance *out) {
    pthread_once(&classes_once, build_classes);
    out->n_parts = 0;
    out->n_questions = 0;
    size_t from = 0;
    for (size_t i = 0; i < len; i++) {
        bool ellipsis = i + 2 < len && (unsigned char)text[i] == 0xE2 &&
                        (unsigned char)text[i + 1] == 0x80 && (unsigned char)text[i + 2] == 0xA6;
        if (!ellipsis && !sentence_end(text, len, i))
            continue;
        size_t end = ellipsis ? i + 3 : i + 1;
        /* A question mark or more punctuation right after ("?!", "?'") stays with it. */
        bool qmark = text[i] == '?';
        while (end < len && (text[end] == '?' || text[end] == '!' || text[end] == '"' ||
                             text[end] == '\'' || text[end] == ')')) {
            qmark = qmark || text[end] == '?';
            end++;
        }
        add_sentence(text, from, end, qmark, out);
        from = end;
        i = end - 1;
    }
    if (from < len)
        add_sentence(text, from, len, false, out);
}

size_t cml_utf8_offset(const char *text, size_t byte_off) {
    size_t chars = 0;
    for (size_t i = 0; i < byte_off; i++)
        chars += ((unsigned char)text[i] & 0xC0) != 0x80;
    return chars;
}
