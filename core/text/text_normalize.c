#include "config.h"

#include "text/text_normalize.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/cml_alloc.h"
#include "base/word_table.h"

/* Whole-word rewrites: informal speech, apostrophe-less contractions, fillers map to "". */
static const struct {
    const char *from, *to;
} word_rewrites[] = {
    {"um", ""},
    {"umm", ""},
    {"ummm", ""},
    {"uh", ""},
    {"uhh", ""},
    {"uhm", ""},
    {"er", ""},
    {"erm", ""},
    {"hmm", ""},
    {"hm", ""},
    {"hmmm", ""},
    {"mm", ""},
    {"mhm", ""},
    {"ah", ""},
    {"gonna", "going to"},
    {"wanna", "want to"},
    {"gotta", "got to"},
    {"hafta", "have to"},
    {"hasta", "has to"},
    {"whatcha", "what are you"},
    {"watcha", "what are you"},
    {"whatchu", "what are you"},
    {"whaddya", "what do you"},
    {"whadya", "what do you"},
    {"wadda", "what do"},
    {"d'you", "do you"},
    {"d'ya", "do you"},
    {"dya", "do you"},
    {"didja", "did you"},
    {"didya", "did you"},
    {"doya", "do you"},
    {"ya", "you"},
    {"y'all", "you all"},
    {"yall", "you all"},
    {"lemme", "let me"},
    {"gimme", "give me"},
    {"dunno", "do not know"},
    {"kinda", "kind of"},
    {"sorta", "sort of"},
    {"'cause", "because"},
    {"cause", "because"},
    {"cuz", "because"},
    {"coz", "because"},
    {"cos", "because"},
    {"yeah", "yes"},
    {"yep", "yes"},
    {"yup", "yes"},
    {"ya'll", "you all"},
    {"nope", "no"},
    {"nah", "no"},
    {"c'mon", "come on"},
    {"cmon", "come on"},
    {"lookit", "look at"},
    {"outta", "out of"},
    {"lotta", "lot of"},
    {"lotsa", "lots of"},
    {"gotcha", "got you"},
    {"betcha", "bet you"},
    {"ok", "okay"},
    {"alright", "okay"},
    {"whats", "what is"},
    {"thats", "that is"},
    {"dont", "do not"},
    {"doesnt", "does not"},
    {"didnt", "did not"},
    {"isnt", "is not"},
    {"arent", "are not"},
    {"cant", "can not"},
    {"cannot", "can not"},
    {"couldnt", "could not"},
    {"wouldnt", "would not"},
    {"shouldnt", "should not"},
    {"wasnt", "was not"},
    {"werent", "were not"},
    {"havent", "have not"},
    {"hasnt", "has not"},
    {"im", "i am"},
    {"youre", "you are"},
    {"lets", "let us"},
    {"ive", "i have"},
    {"hows", "how is"},
    {"wheres", "where is"},
    {"whos", "who is"},
    {"theres", "there is"},
    {"whys", "why is"},
    {"colour", "color"},
    {"colours", "colors"},
    {"favourite", "favorite"},
    {"ain't", "is not"},
    {"can't", "can not"},
    {"won't", "will not"},
    {"shan't", "shall not"},
    {"let's", "let us"},
    {"'em", "them"},
};

/* Words that open a sentence without changing its question: dropped there. */
static const char *const discourse_markers[] = {
    "okay", "so", "well", "oh", "and", "now", "like", "hey", "alright", "right", "ooh",
};

/* Subjects after which 's means "is" rather than a possessive. */
static const char *const is_subjects[] = {
    "what",      "that",    "it",        "there",    "here",   "he",    "she",
    "where",     "who",     "how",       "when",     "why",    "this",  "everything",
    "something", "nothing", "everybody", "somebody", "nobody", "which",
};

static const char *const did_subjects[] = {"what", "where", "how", "who", "why", "when"};

/* First words of a sentence that asks something, when no '?' says which one does. */
static const char *const question_openers[] = {
    "what",     "why",     "how",   "when",   "where", "who",  "whom", "whose", "which", "is",
    "are",      "am",      "was",   "were",   "do",    "does", "did",  "can",   "could", "will",
    "would",    "should",  "shall", "may",    "might", "must", "have", "has",   "had",   "tell",
    "describe", "explain", "show",  "wonder", "i",     "let",  "huh",
};

/*
 * Every word is looked up, so the rewrites and the word lists above live in one read-only hash
 * table built once: one hash and usually one comparison a word.
 */
enum {
    WORD_DISCOURSE = 1u << 0,
    WORD_IS_SUBJECT = 1u << 1,
    WORD_DID_SUBJECT = 1u << 2,
    WORD_OPENER = 1u << 3
};
#define N_ITEMS(a) (sizeof(a) / sizeof((a)[0]))
static cml_word_slot lexicon_slots[512];
static cml_word_table lexicon = {lexicon_slots, N_ITEMS(lexicon_slots), 0};
static pthread_once_t lexicon_once = PTHREAD_ONCE_INIT;

static void build_lexicon(void) {
    int full = 0;
    for (size_t i = 0; i < N_ITEMS(word_rewrites); i++)
        full |= cml_word_table_add(&lexicon, word_rewrites[i].from, 0, word_rewrites[i].to);
    full |= CML_WORD_TABLE_ADD_ARRAY(&lexicon, discourse_markers, WORD_DISCOURSE);
    full |= CML_WORD_TABLE_ADD_ARRAY(&lexicon, is_subjects, WORD_IS_SUBJECT);
    full |= CML_WORD_TABLE_ADD_ARRAY(&lexicon, did_subjects, WORD_DID_SUBJECT);
    full |= CML_WORD_TABLE_ADD_ARRAY(&lexicon, question_openers, WORD_OPENER);
    /* The lists are fixed at compile time: a table too small is a build error in spirit. */
    if (full)
        abort();
}

static inline const cml_word_slot *lexicon_find(const char *w, size_t len) {
    pthread_once(&lexicon_once, build_lexicon);
    return cml_word_table_find(&lexicon, w, len);
}

static inline bool word_is(const char *w, size_t len, uint32_t cls) {
    const cml_word_slot *e = lexicon_find(w, len);
    return e != NULL && (e->bits & cls) != 0;
}

static cml_err reserve(void **buf, size_t *cap, size_t want, size_t elem) {
    if (want <= *cap)
        return CML_OK;
    size_t c = *cap ? *cap : 64;
    while (c < want)
        c *= 2;
    void *p = cml_realloc_array(*buf, c, elem);
    if (p == NULL)
        return CML_ERR_NOMEM;
    *buf = p;
    *cap = c;
    return CML_OK;
}

static cml_err open_sentence(cml_normalized *n) {
    if (reserve((void **)&n->sentences, &n->sentences_cap, n->n_sentences + 1,
                sizeof(cml_sentence)) != CML_OK)
        return CML_ERR_NOMEM;
    cml_sentence *s = &n->sentences[n->n_sentences++];
    s->first = (unsigned)n->n_tokens;
    s->count = 0;
    s->question_mark = false;
    return CML_OK;
}

static bool same_token(const cml_normalized *n, size_t a, size_t b) {
    return n->tokens[a].len == n->tokens[b].len &&
           memcmp(n->chars + n->tokens[a].off, n->chars + n->tokens[b].off, n->tokens[a].len) == 0;
}

/* Appends one output token (a single word, no spaces) to the current sentence. */
static cml_err emit_word(cml_normalized *n, const char *w, size_t len) {
    cml_sentence *s = &n->sentences[n->n_sentences - 1];
    if (len == 0)
        return CML_OK;
    if (s->count == 0) {
        if (word_is(w, len, WORD_DISCOURSE))
            return CML_OK;
    }
    if (reserve((void **)&n->chars, &n->chars_cap, n->chars_len + len + 1, 1) != CML_OK ||
        reserve((void **)&n->tokens, &n->tokens_cap, n->n_tokens + 1, sizeof(cml_token)) != CML_OK)
        return CML_ERR_NOMEM;
    s = &n->sentences[n->n_sentences - 1];
    memcpy(n->chars + n->chars_len, w, len);
    n->chars[n->chars_len + len] = '\0';
    n->tokens[n->n_tokens] = (cml_token){.off = (unsigned)n->chars_len,
                                         .len = (unsigned)len,
                                         .sentence = (unsigned)(n->n_sentences - 1)};
    n->chars_len += len + 1;
    n->n_tokens++;
    s->count++;
    return CML_OK;
}

/* Emits each space-separated word of phrase. */
static cml_err emit_phrase(cml_normalized *n, const char *phrase) {
    while (*phrase) {
        const char *sp = strchr(phrase, ' ');
        size_t len = sp ? (size_t)(sp - phrase) : strlen(phrase);
        cml_err err = emit_word(n, phrase, len);
        if (err != CML_OK)
            return err;
        phrase += len;
        while (*phrase == ' ')
            phrase++;
    }
    return CML_OK;
}

static bool ends_with(const char *w, size_t len, const char *suffix, size_t *stem_len) {
    size_t sl = strlen(suffix);
    if (len <= sl || memcmp(w + len - sl, suffix, sl) != 0)
        return false;
    *stem_len = len - sl;
    return true;
}

/* Expands one raw lower-cased word (apostrophes already ASCII) into output tokens. */
static cml_err emit_raw_word(cml_normalized *n, char *w, size_t len) {
    /* Trailing apostrophes (plural possessive) carry nothing. */
    while (len > 0 && w[len - 1] == '\'')
        len--;
    if (len == 0)
        return CML_OK;
    w[len] = '\0';
    const cml_word_slot *rw = lexicon_find(w, len);
    if (rw != NULL && rw->text != NULL)
        return emit_phrase(n, rw->text);
    /* Every clitic below has an apostrophe; most words do not. */
    if (memchr(w, '\'', len) == NULL)
        return emit_word(n, w, len);
    size_t stem;
    char save;
    if (ends_with(w, len, "n't", &stem)) {
        save = w[stem];
        w[stem] = '\0';
        cml_err err = emit_word(n, w, stem);
        w[stem] = save;
        return err != CML_OK ? err : emit_word(n, "not", 3);
    }
    static const struct {
        const char *suffix, *word;
    } clitics[] = {{"'re", "are"}, {"'ve", "have"}, {"'ll", "will"}, {"'m", "am"}};
    for (size_t i = 0; i < sizeof(clitics) / sizeof(clitics[0]); i++) {
        if (ends_with(w, len, clitics[i].suffix, &stem)) {
            cml_err err = emit_word(n, w, stem);
            return err != CML_OK ? err : emit_phrase(n, clitics[i].word);
        }
    }
    if (ends_with(w, len, "'d", &stem) || ends_with(w, len, "'s", &stem)) {
        bool is_d = w[len - 1] == 'd';
        w[stem] = '\0';
        cml_err err = emit_word(n, w, stem);
        if (err != CML_OK)
            return err;
        if (is_d)
            return emit_phrase(n, word_is(w, stem, WORD_DID_SUBJECT) ? "did" : "would");
        return word_is(w, stem, WORD_IS_SUBJECT) ? emit_word(n, "is", 2) : CML_OK;
    }
    return emit_word(n, w, len);
}

/* Removes immediate repeats of 1-3 word runs inside the current sentence ("is it is it"). */
static void collapse_repeats(cml_normalized *n) {
    cml_sentence *s = &n->sentences[n->n_sentences - 1];
    size_t first = s->first;
    size_t i = first;
    while (i < first + s->count) {
        bool removed = false;
        for (size_t run = 3; run >= 1 && !removed; run--) {
            size_t end = first + s->count;
            if (i + 2 * run > end)
                continue;
            bool same = true;
            for (size_t k = 0; k < run && same; k++)
                same = same_token(n, i + k, i + run + k);
            if (same) {
                memmove(&n->tokens[i + run], &n->tokens[i + 2 * run],
                        (end - i - 2 * run) * sizeof(cml_token));
                s->count -= (unsigned)run;
                n->n_tokens -= run;
                removed = true;
            }
        }
        if (!removed)
            i++;
    }
}

static cml_err close_sentence(cml_normalized *n, bool question) {
    cml_sentence *s = &n->sentences[n->n_sentences - 1];
    if (question)
        s->question_mark = true;
    if (s->count == 0) {
        /* An empty sentence ("?" alone, or only fillers) lends its '?' to the previous one. */
        if (question && n->n_sentences > 1)
            n->sentences[n->n_sentences - 2].question_mark = true;
        return CML_OK;
    }
    collapse_repeats(n);
    return open_sentence(n);
}

static bool is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '\'' || c >= 0x80;
}

static void choose_focus(cml_normalized *n) {
    size_t used = n->n_sentences;
    while (used > 0 && n->sentences[used - 1].count == 0)
        used--;
    n->focus = used ? used - 1 : 0;
    for (size_t i = used; i-- > 0;)
        if (n->sentences[i].question_mark && n->sentences[i].count > 0) {
            n->focus = i;
            return;
        }
    for (size_t i = used; i-- > 0;) {
        if (n->sentences[i].count == 0)
            continue;
        const cml_token *first = &n->tokens[n->sentences[i].first];
        if (word_is(n->chars + first->off, first->len, WORD_OPENER)) {
            n->focus = i;
            return;
        }
    }
}

cml_err cml_normalize(const char *text, size_t len, cml_normalized *n) {
    char word[128];
    size_t wlen = 0;
    cml_err err;

    n->chars_len = 0;
    n->n_tokens = 0;
    n->n_sentences = 0;
    n->focus = 0;
    if ((err = open_sentence(n)) != CML_OK)
        return err;

    for (size_t i = 0; i <= len; i++) {
        unsigned char c = i < len ? (unsigned char)text[i] : ' ';
        bool apostrophe = c == '\'' || c == '`';
        size_t skip = 0;
        enum { SEP, DASH, STOP, QUESTION, WORD } kind = SEP;

        if (c >= 0x80 && i + 2 < len && c == 0xE2 && (unsigned char)text[i + 1] == 0x80) {
            unsigned char d = (unsigned char)text[i + 2];
            skip = 2;
            if (d == 0x98 || d == 0x99)
                apostrophe = true;
            else if (d == 0x93 || d == 0x94)
                kind = DASH;
            else
                kind = SEP; /* curly double quotes, ellipsis, other punctuation */
        } else if (c == 0xC2 && i + 1 < len && (unsigned char)text[i + 1] == 0xA0) {
            skip = 1;
        } else if (apostrophe || is_word_byte(c)) {
            kind = WORD;
        } else if (c == '-') {
            kind = DASH;
        } else if (c == '?') {
            kind = QUESTION;
        } else if (c == '!' || c == ';') {
            kind = STOP;
        } else if (c == '.') {
            /* "2.5" stays a word; "..." is a pause, not the end of a sentence. */
            bool digits = wlen > 0 && word[wlen - 1] >= '0' && word[wlen - 1] <= '9' &&
                          i + 1 < len && text[i + 1] >= '0' && text[i + 1] <= '9';
            bool run = (i + 1 < len && text[i + 1] == '.') || (i > 0 && text[i - 1] == '.');
            kind = digits ? WORD : run ? SEP : STOP;
        }
        if (apostrophe)
            kind = WORD, c = '\'';

        if (kind == WORD) {
            if (wlen + 1 + skip < sizeof(word) - 1) {
                if (c >= 'A' && c <= 'Z')
                    c = (unsigned char)(c - 'A' + 'a');
                word[wlen++] = (char)c;
                for (size_t k = 0; k < skip && c != '\''; k++)
                    word[wlen++] = text[i + 1 + k];
            }
            i += skip;
            continue;
        }
        i += skip;
        if (wlen > 0) {
            /* A word cut off by a dash before a space or the end is dropped ("you- if you"). */
            bool cut_off = false;
            if (kind == DASH) {
                size_t j = i + 1;
                cut_off = j >= len || !is_word_byte((unsigned char)text[j]);
            }
            if (!cut_off && (err = emit_raw_word(n, word, wlen)) != CML_OK)
                return err;
            wlen = 0;
        }
        if (kind == STOP || kind == QUESTION) {
            if ((err = close_sentence(n, kind == QUESTION)) != CML_OK)
                return err;
        }
    }
    if (n->sentences[n->n_sentences - 1].count > 0)
        collapse_repeats(n);
    else if (n->n_sentences > 1)
        n->n_sentences--;
    choose_focus(n);
    return CML_OK;
}

void cml_normalized_release(cml_normalized *n) {
    if (n == NULL)
        return;
    cml_free(n->chars);
    cml_free(n->tokens);
    cml_free(n->sentences);
    memset(n, 0, sizeof(*n));
}

size_t cml_normalized_join(const cml_normalized *n, char *buf, size_t cap) {
    size_t used = 0;
    if (cap == 0)
        return 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n->n_tokens; i++) {
        const char *w = cml_token_str(n, i);
        size_t wl = n->tokens[i].len;
        if (used + wl + 2 >= cap)
            break;
        if (i > 0)
            buf[used++] = (n->tokens[i].sentence != n->tokens[i - 1].sentence) ? '|' : ' ';
        memcpy(buf + used, w, wl);
        used += wl;
        buf[used] = '\0';
    }
    return used;
}
