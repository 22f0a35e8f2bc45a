#include "config.h"

#include "text/text_features.h"

#include <libstemmer.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
/* Inlined: most keys hash 2-5 bytes, where a call through the shared library costs more than
   the hash itself. Same functions, same values as libxxhash. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "base/byte_buffer.h"
#include "base/cml_alloc.h"
#include "base/u64_map.h"
#include "base/word_table.h"

/* Namespaces live in the two low bits of a term key. */
enum { NS_WORD = 0, NS_FOCUS = 1, NS_CHAR = 2, NS_COUNT = 3 };
#define FEATURIZER_FORMAT 1

const cml_feature_config cml_feature_config_default = {
    .min_df_words = 2,
    .min_df_chars = 2,
    .char_min = 2,
    .char_max = 5,
    .weight_words = 1.0f,
    .weight_focus = 1.0f,
    .weight_chars = 1.0f,
    .weight_hand = 1.0f,
};

const char *const cml_hand_feature_names[CML_HAND_FEATURES] = {
    "focus_opens_wh",
    "focus_opens_aux",
    "focus_has_or",
    "how_many_much",
    "what_color_shape",
    "what_do_you_think",
    "tell_describe_explain",
    "i_wonder_lets_think",
    "why",
    "why_dont_you",
    "tag_question",
    "how_process",
    "how_adjective",
    "focus_question_mark",
    "any_question_mark",
    "sentences",
    "focus_length",
    "total_length",
    "can_you_invitation",
    "aux_you_opening",
    "what_happens",
    "which",
    "where_who_when",
    "very_short",
};

struct cml_featurizer {
    uint64_t id; /* unique in the process: tags what scratch caches learned from it */
    cml_feature_config cfg;
    uint32_t n_docs;
    size_t n_vocab;
    uint64_t *keys; /* column CML_HAND_FEATURES + i has key keys[i] */
    float *idf;
    /*
     * Read-only lookup from term key to vocabulary position: one 8-byte slot
     * per probe (a 32-bit tag of the key and the position), so a lookup is
     * usually one cache miss. Slot from the key's middle bits, tag from its
     * top bits: together about 50 bits of the key are compared.
     */
    struct vocab_slot {
        uint32_t tag;
        int32_t pos; /* -1 when empty */
    } * slots;
    size_t slot_mask;
};

static atomic_uint_fast64_t featurizer_ids;

/* A zeroed featurizer with a fresh id, owned by the caller; NULL on OOM. */
static cml_featurizer *featurizer_new(void) {
    cml_featurizer *f = cml_calloc(1, sizeof(*f));
    if (f != NULL)
        f->id = atomic_fetch_add(&featurizer_ids, 1) + 1;
    return f;
}

static inline size_t vocab_home(uint64_t key, size_t mask) { return (size_t)(key >> 2) & mask; }

static inline int32_t vocab_find(const cml_featurizer *f, uint64_t key) {
    uint32_t tag = (uint32_t)(key >> 32);
    for (size_t i = vocab_home(key, f->slot_mask);; i = (i + 1) & f->slot_mask) {
        const struct vocab_slot *v = &f->slots[i];
        if (v->pos < 0)
            return -1;
        if (v->tag == tag)
            return v->pos;
    }
}

/* Direct-mapped cache of stems: most words of classroom talk repeat, and stemming dominates. */
#define STEM_CACHE 4096
#define STEM_MAX 24
typedef struct stem_entry {
    uint64_t word_hash; /* 0 = empty */
    uint8_t word_len, stem_len;
    char stem[STEM_MAX];
} stem_entry;

/*
 * Cache of the vocabulary positions of each word's character n-grams, per featurizer: most
 * terms of a question are character n-grams of words seen before, and each costs a hash and a
 * lookup. Entries index a pool of positions; when the pool is full, the epoch moves on and
 * every entry is stale at once.
 */
#define GRAM_CACHE 2048
#define GRAM_POOL (32 * 1024)
typedef struct gram_entry {
    uint64_t word_hash;
    uint64_t featurizer_id;
    uint32_t epoch, off;
    uint16_t word_len, n;
} gram_entry;

struct cml_feature_scratch {
    cml_normalized norm;
    struct sb_stemmer *stemmer;
    stem_entry *stem_cache;
    uint64_t *token_hash; /* XXH3 of each token, | 1 */
    size_t token_hash_cap;
    gram_entry *gram_cache;
    int32_t *gram_pool;
    uint32_t gram_pool_used, gram_epoch;
    uint32_t *token_class; /* word classes of each token, for the question-form features */
    size_t token_class_cap;
    char *stems;
    size_t stems_cap;
    unsigned *stem_off;
    size_t stem_off_cap;
    /* Accumulator of (column, count) with an open-addressing position index. */
    int *cols;
    float *vals;
    size_t n, cap;
    int *slots; /* -1 empty, else position in cols */
    size_t slots_cap;
    /* Terms of one document, for fitting. */
    uint64_t *terms;
    size_t n_terms, terms_cap;
};

static cml_err grow_array(void **p, size_t *cap, size_t want, size_t elem) {
    if (want <= *cap)
        return CML_OK;
    size_t c = *cap ? *cap : 256;
    while (c < want)
        c *= 2;
    void *q = cml_realloc_array(*p, c, elem);
    if (q == NULL)
        return CML_ERR_NOMEM;
    *p = q;
    *cap = c;
    return CML_OK;
}

cml_feature_scratch *cml_feature_scratch_new(void) {
    cml_feature_scratch *s = cml_calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->stemmer = sb_stemmer_new("english", "UTF_8");
    s->stem_cache = cml_calloc(STEM_CACHE, sizeof(stem_entry));
    s->gram_cache = cml_calloc(GRAM_CACHE, sizeof(gram_entry));
    s->gram_pool = cml_malloc(GRAM_POOL * sizeof(int32_t));
    s->gram_epoch = 1;
    if (s->stemmer == NULL || s->stem_cache == NULL || s->gram_cache == NULL ||
        s->gram_pool == NULL) {
        cml_feature_scratch_free(s);
        return NULL;
    }
    return s;
}

void cml_feature_scratch_free(cml_feature_scratch *s) {
    if (s == NULL)
        return;
    cml_normalized_release(&s->norm);
    if (s->stemmer != NULL)
        sb_stemmer_delete(s->stemmer);
    cml_free(s->stem_cache);
    cml_free(s->token_hash);
    cml_free(s->token_class);
    cml_free(s->gram_cache);
    cml_free(s->gram_pool);
    cml_free(s->stems);
    cml_free(s->stem_off);
    cml_free(s->cols);
    cml_free(s->vals);
    cml_free(s->slots);
    cml_free(s->terms);
    cml_free(s);
}

/*
 * Normalises text and stems every token into s->stems, each followed by one space: the stems
 * of consecutive tokens are then their n-gram as it is hashed, with no copy.
 * stem_off[i] is where token i's stem starts; stem_off[n_tokens] is the end.
 */
static cml_err prepare(cml_feature_scratch *s, const char *text, size_t len) {
    cml_err err = cml_normalize(text, len, &s->norm);
    if (err != CML_OK)
        return err;
    const cml_normalized *n = &s->norm;
    if (grow_array((void **)&s->stem_off, &s->stem_off_cap, n->n_tokens + 1, sizeof(unsigned)) !=
            CML_OK ||
        grow_array((void **)&s->stems, &s->stems_cap, n->chars_len + n->n_tokens + 1, 1) !=
            CML_OK ||
        grow_array((void **)&s->token_hash, &s->token_hash_cap, n->n_tokens + 1,
                   sizeof(uint64_t)) != CML_OK)
        return CML_ERR_NOMEM;
    size_t used = 0;
    for (size_t i = 0; i < n->n_tokens; i++) {
        const char *word = cml_token_str(n, i);
        size_t wl = n->tokens[i].len;
        uint64_t h = XXH3_64bits(word, wl) | 1;
        s->token_hash[i] = h;
        stem_entry *e = &s->stem_cache[h % STEM_CACHE];
        const sb_symbol *st;
        size_t sl;
        if (e->word_hash == h && e->word_len == wl) {
            st = (const sb_symbol *)e->stem;
            sl = e->stem_len;
        } else {
            st = sb_stemmer_stem(s->stemmer, (const sb_symbol *)word, (int)wl);
            sl = st ? (size_t)sb_stemmer_length(s->stemmer) : 0;
            if (st == NULL || sl > wl + 4) {
                st = (const sb_symbol *)word;
                sl = wl;
            }
            if (wl < 256 && sl < STEM_MAX) {
                e->word_hash = h;
                e->word_len = (uint8_t)wl;
                e->stem_len = (uint8_t)sl;
                memcpy(e->stem, st, sl);
            }
        }
        if (grow_array((void **)&s->stems, &s->stems_cap, used + sl + 1, 1) != CML_OK)
            return CML_ERR_NOMEM;
        memcpy(s->stems + used, st, sl);
        s->stems[used + sl] = ' ';
        s->stem_off[i] = (unsigned)used;
        used += sl + 1;
    }
    s->stem_off[n->n_tokens] = (unsigned)used;
    return CML_OK;
}

static inline uint64_t term_key(const void *p, size_t len, unsigned ns) {
    uint64_t h = XXH3_64bits_withSeed(p, len, 0x6f65712d63657100ull + ns);
    return cml_u64_map_key((h & ~(uint64_t)3) | ns);
}

typedef void (*term_sink)(cml_feature_scratch *s, const cml_featurizer *f, uint64_t key);

/* Stems [from, from+k) joined by single spaces: a view into s->stems. */
static inline const char *stem_run(const cml_feature_scratch *s, size_t from, size_t k,
                                   size_t *len) {
    *len = s->stem_off[from + k] - 1 - s->stem_off[from];
    return s->stems + s->stem_off[from];
}

/* prefix + stems [from, from+k) joined by single spaces, into buf (truncated to cap). */
static size_t join_stems(const cml_feature_scratch *s, size_t from, size_t k, const char *prefix,
                         char *buf, size_t cap) {
    size_t used = strlen(prefix), run;
    const char *w = stem_run(s, from, k, &run);
    memcpy(buf, prefix, used);
    buf[used++] = ' ';
    if (used + run > cap)
        run = cap - used;
    memcpy(buf + used, w, run);
    return used + run;
}

/* The word and focus terms of the prepared text, in a fixed order, handed to sink. */
static void enumerate_word_terms(cml_feature_scratch *s, const cml_featurizer *f, term_sink sink) {
    const cml_normalized *n = &s->norm;
    char buf[512];
    for (size_t si = 0; si < n->n_sentences; si++) {
        const cml_sentence *sen = &n->sentences[si];
        for (size_t t = sen->first; t < sen->first + sen->count; t++) {
            size_t len;
            const char *run = stem_run(s, t, 1, &len);
            sink(s, f, term_key(run, len, NS_WORD));
            if (t + 1 < sen->first + sen->count) {
                run = stem_run(s, t, 2, &len);
                sink(s, f, term_key(run, len, NS_WORD));
            }
        }
        /* Openings of every question sentence. */
        if (sen->question_mark && sen->count > 0) {
            for (size_t k = 1; k <= 2 && k <= sen->count; k++) {
                size_t len = join_stems(s, sen->first, k, "Q^", buf, sizeof buf);
                sink(s, f, term_key(buf, len, NS_FOCUS));
            }
        }
    }
    if (n->n_tokens > 0) {
        const cml_sentence *fs = &n->sentences[n->focus];
        size_t end = fs->first + fs->count;
        for (size_t t = fs->first; t < end; t++)
            for (size_t k = 1; k <= 3 && t + k <= end; k++) {
                size_t len;
                const char *run = stem_run(s, t, k, &len);
                sink(s, f, term_key(run, len, NS_FOCUS));
            }
        for (size_t k = 1; k <= 3 && k <= fs->count; k++) {
            size_t len = join_stems(s, fs->first, k, "^", buf, sizeof buf);
            sink(s, f, term_key(buf, len, NS_FOCUS));
        }
        size_t k = fs->count >= 2 ? 2 : 1;
        size_t len = join_stems(s, end - k, k, "$", buf, sizeof buf);
        sink(s, f, term_key(buf, len, NS_FOCUS));
    }
}

/* Character n-grams of token t (unstemmed, inside word boundaries), in order, to sink. */
static void enumerate_char_terms(cml_feature_scratch *s, const cml_featurizer *f,
                                 const cml_feature_config *cfg, size_t t, term_sink sink) {
    const cml_normalized *n = &s->norm;
    char buf[512];
    size_t wl = n->tokens[t].len;
    if (wl + 2 > sizeof buf)
        return;
    buf[0] = ' ';
    memcpy(buf + 1, cml_token_str(n, t), wl);
    buf[wl + 1] = ' ';
    size_t padded = wl + 2;
    for (size_t g = cfg->char_min; g <= cfg->char_max && g <= padded; g++)
        for (size_t i = 0; i + g <= padded; i++)
            sink(s, f, term_key(buf + i, g, NS_CHAR));
}

/* Every term of the prepared text, in a fixed order, handed to sink. */
static void enumerate_terms(cml_feature_scratch *s, const cml_featurizer *f,
                            const cml_feature_config *cfg, term_sink sink) {
    enumerate_word_terms(s, f, sink);
    for (size_t t = 0; t < s->norm.n_tokens; t++)
        enumerate_char_terms(s, f, cfg, t, sink);
}

/* --- hand features ------------------------------------------------------ */

static const char *const wh_words[] = {"what", "why",  "how",   "when", "where",
                                       "who",  "whom", "whose", "which"};
static const char *const aux_words[] = {"is",  "are",   "am",    "was",  "were",  "do",     "does",
                                        "did", "can",   "could", "will", "would", "should", "shall",
                                        "may", "might", "must",  "have", "has",   "had"};
static const char *const pronouns[] = {"it",   "you", "we",   "he",   "she",
                                       "they", "i",   "that", "this", "there"};
static const char *const how_adjectives[] = {"old",   "big",  "long", "far",  "tall",
                                             "heavy", "high", "fast", "much", "many",
                                             "small", "hot",  "cold"};
static const char *const invite_verbs[] = {"tell", "show",  "explain", "describe", "think",
                                           "talk", "share", "figure",  "imagine",  "remember"};

/* Classes of words the question-form features test, looked up once per token. */
enum {
    CLS_WH = 1u << 0,
    CLS_AUX = 1u << 1,
    CLS_PRONOUN = 1u << 2,
    CLS_HOW_ADJECTIVE = 1u << 3,
    CLS_INVITE = 1u << 4,
    CLS_TAG_END = 1u << 5,    /* "..., right?" */
    CLS_POLITE_AUX = 1u << 6, /* "can/could/would/will you ..." */
    CLS_WHERE_WHO_WHEN = 1u << 7,
    CLS_PHRASE_HEAD = 1u << 8, /* << i: first word of a phrase of phrase_features[i] */
};
static const char *const tag_ends[] = {"right", "okay", "huh", "eh", "yes"};
static const char *const polite_aux[] = {"can", "could", "would", "will"};
static const char *const where_who_when[] = {"where", "who", "when"};

/* Phrases (space-separated words) whose presence sets a column. */
#define MAX_PHRASES 6
static const struct phrase_feature {
    int column;
    bool focus_only; /* in the focus sentence, or anywhere */
    const char *phrases[MAX_PHRASES];
} phrase_features[] = {
    {2, true, {"or"}},
    {3, true, {"how many", "how much"}},
    {4,
     true,
     {"what color", "which color", "what shape", "what letter", "what number", "what day"}},
    {5, false, {"what do you think", "what did you think"}},
    {6, false, {"tell me", "tell us", "describe", "explain", "show me how"}},
    {7, false, {"i wonder", "i am curious", "let us think", "let us figure", "i am wondering"}},
    {8, false, {"why", "how come"}},
    {9, false, {"why do not you", "why not"}},
    {20,
     true,
     {"what happened", "what happens", "what will happen", "what would happen", "what could happen",
      "what is going to happen"}},
    {21, true, {"which"}},
};
#define N_PHRASE_FEATURES (sizeof(phrase_features) / sizeof(phrase_features[0]))

_Static_assert(N_PHRASE_FEATURES <= 32 - 8, "too many phrase features for the class bits");

static cml_word_slot word_class_slots[256];
static cml_word_table word_classes = {word_class_slots,
                                      sizeof(word_class_slots) / sizeof(word_class_slots[0]), 0};
/* Length of each phrase's first word. */
static uint8_t phrase_head_len[N_PHRASE_FEATURES][MAX_PHRASES];
static pthread_once_t hand_tables_once = PTHREAD_ONCE_INIT;

#define ADD_CLASS(list, cls) CML_WORD_TABLE_ADD_ARRAY(&word_classes, list, cls)

static void build_hand_tables(void) {
    int full = ADD_CLASS(wh_words, CLS_WH) | ADD_CLASS(aux_words, CLS_AUX) |
               ADD_CLASS(pronouns, CLS_PRONOUN) | ADD_CLASS(how_adjectives, CLS_HOW_ADJECTIVE) |
               ADD_CLASS(invite_verbs, CLS_INVITE) | ADD_CLASS(tag_ends, CLS_TAG_END) |
               ADD_CLASS(polite_aux, CLS_POLITE_AUX) |
               ADD_CLASS(where_who_when, CLS_WHERE_WHO_WHEN);
    for (size_t i = 0; i < N_PHRASE_FEATURES; i++)
        for (size_t j = 0; j < MAX_PHRASES && phrase_features[i].phrases[j]; j++) {
            const char *p = phrase_features[i].phrases[j];
            size_t first = strcspn(p, " ");
            phrase_head_len[i][j] = (uint8_t)first;
            full |= cml_word_table_add_n(&word_classes, p, first, CLS_PHRASE_HEAD << i, NULL);
        }
    /* The lists are fixed at compile time: a table too small is a build error in spirit. */
    if (full)
        abort();
}

/* Is tokens[t..] the phrase (space-separated words)? */
static bool phrase_at(const cml_normalized *n, size_t t, size_t end, const char *phrase) {
    while (*phrase) {
        if (t >= end)
            return false;
        const char *sp = strchr(phrase, ' ');
        size_t len = sp ? (size_t)(sp - phrase) : strlen(phrase);
        if (n->tokens[t].len != len || memcmp(cml_token_str(n, t), phrase, len) != 0)
            return false;
        phrase += len;
        while (*phrase == ' ')
            phrase++;
        t++;
    }
    return true;
}

/* Does a phrase of phrase_features[feature] start at a token of [from, end)? */
static bool any_phrase(const cml_normalized *n, const uint32_t *classes, size_t from, size_t end,
                       size_t feature) {
    const struct phrase_feature *pf = &phrase_features[feature];
    for (size_t t = from; t < end; t++) {
        if (!(classes[t] & (CLS_PHRASE_HEAD << feature)))
            continue;
        for (size_t j = 0; j < MAX_PHRASES && pf->phrases[j]; j++)
            if (n->tokens[t].len == phrase_head_len[feature][j] &&
                phrase_at(n, t, end, pf->phrases[j]))
                return true;
    }
    return false;
}

static inline bool token_is(const cml_normalized *n, size_t t, const char *w, size_t len) {
    return n->tokens[t].len == len && memcmp(cml_token_str(n, t), w, len) == 0;
}

/* Question-form features of the normalised text s->norm into h. */
static cml_err compute_hand(cml_feature_scratch *s, float *h) {
    const cml_normalized *n = &s->norm;
    memset(h, 0, CML_HAND_FEATURES * sizeof(float));
    if (n->n_tokens == 0)
        return CML_OK;
    pthread_once(&hand_tables_once, build_hand_tables);
    if (grow_array((void **)&s->token_class, &s->token_class_cap, n->n_tokens, sizeof(uint32_t)) !=
        CML_OK)
        return CML_ERR_NOMEM;
    uint32_t *classes = s->token_class, present = 0;
    for (size_t t = 0; t < n->n_tokens; t++) {
        classes[t] = cml_word_table_bits(&word_classes, cml_token_str(n, t), n->tokens[t].len);
        present |= classes[t];
    }
    const cml_sentence *fs = &n->sentences[n->focus];
    size_t a = fs->first, e = fs->first + fs->count, all = n->n_tokens;
    uint32_t first = classes[a], last = classes[e - 1];
    bool second_you = fs->count > 1 && token_is(n, a + 1, "you", 3);

    for (size_t i = 0; i < N_PHRASE_FEATURES; i++) {
        bool focus = phrase_features[i].focus_only;
        h[phrase_features[i].column] = (present & (CLS_PHRASE_HEAD << i)) &&
                                       any_phrase(n, classes, focus ? a : 0, focus ? e : all, i);
    }
    h[0] = (first & CLS_WH) != 0;
    h[1] = (first & CLS_AUX) != 0;
    bool tag = (last & CLS_TAG_END) != 0;
    if (fs->count > 3 && (last & CLS_PRONOUN) && token_is(n, e - 2, "not", 3) &&
        (classes[e - 3] & CLS_AUX))
        tag = true;
    h[10] = tag;
    for (size_t t = a; t + 1 < e; t++) {
        if (!token_is(n, t, "how", 3))
            continue;
        uint32_t next = classes[t + 1];
        if (next & CLS_HOW_ADJECTIVE)
            h[12] = 1;
        else if (next & CLS_AUX)
            h[11] = 1;
    }
    h[13] = fs->question_mark;
    for (size_t i = 0; i < n->n_sentences; i++)
        if (n->sentences[i].question_mark)
            h[14] = 1;
    h[15] = (float)(n->n_sentences > 5 ? 5 : n->n_sentences) / 5.0f;
    h[16] = (float)(log1p((double)fs->count) / log(40.0));
    h[17] = (float)(log1p((double)all) / log(60.0));
    h[18] =
        (first & CLS_POLITE_AUX) && second_you && fs->count > 2 && (classes[a + 2] & CLS_INVITE);
    h[19] = (first & CLS_AUX) && second_you;
    h[22] = (first & CLS_WHERE_WHO_WHEN) != 0;
    h[23] = fs->count <= 2;
    return CML_OK;
}

/* --- extraction ----------------------------------------------------------- */

static void collect(cml_feature_scratch *s, const cml_featurizer *f, uint64_t key);

/* Counts one occurrence of vocabulary position pos. */
static void accumulate_position(cml_feature_scratch *s, int32_t pos) {
    int col = CML_HAND_FEATURES + pos;
    size_t mask = s->slots_cap - 1;
    for (size_t i = ((size_t)col * 0x9E3779B1u) & mask;; i = (i + 1) & mask) {
        int p = s->slots[i];
        if (p < 0) {
            s->slots[i] = (int)s->n;
            s->cols[s->n] = col;
            s->vals[s->n] = 1.0f;
            s->n++;
            return;
        }
        if (s->cols[p] == col) {
            s->vals[p] += 1.0f;
            return;
        }
    }
}

/*
 * Looks up the collected keys s->terms and counts those in the vocabulary; their positions go
 * to found (when not NULL; room for n_terms) and their number is returned. Keys first, then
 * lookups with prefetching: the vocabulary table misses the cache, and overlapping those
 * misses is much of the speed of extraction.
 */
static size_t lookup_terms(cml_feature_scratch *s, const cml_featurizer *f, int32_t *found) {
    const size_t ahead = 12;
    size_t n_found = 0;
    for (size_t i = 0; i < s->n_terms && i < ahead; i++)
        __builtin_prefetch(&f->slots[vocab_home(s->terms[i], f->slot_mask)]);
    for (size_t i = 0; i < s->n_terms; i++) {
        if (i + ahead < s->n_terms)
            __builtin_prefetch(&f->slots[vocab_home(s->terms[i + ahead], f->slot_mask)]);
        int32_t pos = vocab_find(f, s->terms[i]);
        if (pos < 0)
            continue;
        accumulate_position(s, pos);
        if (found != NULL)
            found[n_found] = pos;
        n_found++;
    }
    return n_found;
}

/* Counts token t's character n-grams, from the cache when this word was seen before. */
static void accumulate_char_terms(cml_feature_scratch *s, const cml_featurizer *f, size_t t) {
    uint64_t h = s->token_hash[t];
    size_t wl = s->norm.tokens[t].len;
    gram_entry *e = &s->gram_cache[(h >> 20) % GRAM_CACHE];
    if (e->word_hash == h && e->word_len == wl && e->featurizer_id == f->id &&
        e->epoch == s->gram_epoch) {
        for (uint32_t k = 0; k < e->n; k++)
            accumulate_position(s, s->gram_pool[e->off + k]);
        return;
    }
    s->n_terms = 0;
    enumerate_char_terms(s, f, &f->cfg, t, collect);
    if (s->n_terms > GRAM_POOL || wl > UINT16_MAX) { /* never cached */
        lookup_terms(s, f, NULL);
        return;
    }
    if (s->gram_pool_used + s->n_terms > GRAM_POOL) {
        s->gram_epoch++;
        s->gram_pool_used = 0;
    }
    uint32_t off = s->gram_pool_used;
    size_t n_found = lookup_terms(s, f, s->gram_pool + off);
    *e = (gram_entry){.word_hash = h,
                      .featurizer_id = f->id,
                      .epoch = s->gram_epoch,
                      .off = off,
                      .word_len = (uint16_t)wl,
                      .n = (uint16_t)n_found};
    s->gram_pool_used += (uint32_t)n_found;
}

static size_t term_bound(const cml_normalized *n, const cml_feature_config *cfg) {
    size_t chars = n->chars_len;
    return 8 * n->n_tokens + chars * (cfg->char_max - cfg->char_min + 1) +
           2 * (cfg->char_max + 2) * n->n_tokens + 64;
}

cml_err cml_features_extract(const cml_featurizer *f, cml_feature_scratch *s, const char *text,
                             size_t len, cml_sparse *out) {
    cml_err err = prepare(s, text, len);
    if (err != CML_OK)
        return err;
    size_t bound = term_bound(&s->norm, &f->cfg) + CML_HAND_FEATURES;
    size_t slots = 64;
    while (slots < bound * 2)
        slots *= 2;
    /* Room for every term up front, so collecting never fails half way (a half list of a
       word's n-grams would stay in the cache). */
    if (grow_array((void **)&s->cols, &s->cap, bound, sizeof(int)) != CML_OK ||
        grow_array((void **)&s->terms, &s->terms_cap, bound, sizeof(uint64_t)) != CML_OK)
        return CML_ERR_NOMEM;
    size_t vcap = s->cap;
    s->cap = 0;
    if (grow_array((void **)&s->vals, &s->cap, vcap, sizeof(float)) != CML_OK)
        return CML_ERR_NOMEM;
    if (slots > s->slots_cap) {
        int *p = cml_realloc_array(s->slots, slots, sizeof(int));
        if (p == NULL)
            return CML_ERR_NOMEM;
        s->slots = p;
        s->slots_cap = slots;
        memset(s->slots, 0xff, slots * sizeof(int));
    }
    /* Hand features first, then counted terms. */
    float hand[CML_HAND_FEATURES];
    if ((err = compute_hand(s, hand)) != CML_OK)
        return err;
    s->n = 0;
    for (int i = 0; i < CML_HAND_FEATURES; i++) {
        if (hand[i] != 0.0f) {
            s->cols[s->n] = i;
            s->vals[s->n] = hand[i] * f->cfg.weight_hand;
            s->n++;
        }
    }
    size_t first_term = s->n;
    /* Word terms, then each token's character n-grams: the same order as fitting. */
    s->n_terms = 0;
    enumerate_word_terms(s, f, collect);
    lookup_terms(s, f, NULL);
    for (size_t t = 0; t < s->norm.n_tokens; t++)
        accumulate_char_terms(s, f, t);

    /* Sublinear TF times IDF, L2-normalised per namespace. */
    double norm2[NS_COUNT] = {0};
    for (size_t i = first_term; i < s->n; i++) {
        size_t pos = (size_t)s->cols[i] - CML_HAND_FEATURES;
        float tf = s->vals[i] == 1.0f ? 1.0f : 1.0f + logf(s->vals[i]);
        float v = tf * f->idf[pos];
        s->vals[i] = v;
        norm2[f->keys[pos] & 3] += (double)v * v;
    }
    const float weight[NS_COUNT] = {f->cfg.weight_words, f->cfg.weight_focus, f->cfg.weight_chars};
    float scale[NS_COUNT];
    for (int k = 0; k < NS_COUNT; k++)
        scale[k] = norm2[k] > 0 ? (float)(weight[k] / sqrt(norm2[k])) : 0.0f;
    for (size_t i = first_term; i < s->n; i++) {
        size_t pos = (size_t)s->cols[i] - CML_HAND_FEATURES;
        s->vals[i] *= scale[f->keys[pos] & 3];
        /* Leave the position index clean for the next call. */
    }
    size_t mask = s->slots_cap - 1;
    for (size_t i = first_term; i < s->n; i++)
        for (size_t j = ((size_t)s->cols[i] * 0x9E3779B1u) & mask;; j = (j + 1) & mask)
            if (s->slots[j] == (int)i) {
                s->slots[j] = -1;
                break;
            }
    out->n = (int)s->n;
    out->idx = s->cols;
    out->val = s->vals;
    return CML_OK;
}

cml_err cml_hand_features(cml_feature_scratch *s, const char *text, size_t len, float *out) {
    cml_err err = cml_normalize(text, len, &s->norm);
    return err != CML_OK ? err : compute_hand(s, out);
}

/* --- fitting -------------------------------------------------------------- */

static void collect(cml_feature_scratch *s, const cml_featurizer *f, uint64_t key) {
    (void)f;
    if (grow_array((void **)&s->terms, &s->terms_cap, s->n_terms + 1, sizeof(uint64_t)) != CML_OK)
        return; /* counted as a failure by the caller through n_terms mismatch */
    s->terms[s->n_terms++] = key;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static cml_err build_index(cml_featurizer *f) {
    size_t cap = 64;
    while (cap < f->n_vocab + f->n_vocab / 2 + 1) /* load at most 2/3 */
        cap *= 2;
    f->slots = cml_malloc(cap * sizeof(*f->slots));
    if (f->slots == NULL)
        return CML_ERR_NOMEM;
    memset(f->slots, 0xff, cap * sizeof(*f->slots));
    f->slot_mask = cap - 1;
    for (size_t i = 0; i < f->n_vocab; i++) {
        size_t j = vocab_home(f->keys[i], f->slot_mask);
        while (f->slots[j].pos >= 0)
            j = (j + 1) & f->slot_mask;
        f->slots[j].tag = (uint32_t)(f->keys[i] >> 32);
        f->slots[j].pos = (int32_t)i;
    }
    return CML_OK;
}

cml_err cml_featurizer_fit(const cml_dataset *ds, const cml_feature_config *cfg,
                           cml_featurizer **out) {
    cml_err err = CML_OK;
    cml_u64_map df = {0};
    cml_feature_scratch *s = NULL;
    cml_featurizer *f = NULL;

    *out = NULL;
    if (ds == NULL || ds->n == 0)
        return CML_ERR_INVALID;
    if (cfg == NULL)
        cfg = &cml_feature_config_default;
    if (cfg->char_min < 1 || cfg->char_max < cfg->char_min || cfg->char_max > 8)
        return CML_ERR_INVALID;
    s = cml_feature_scratch_new();
    f = featurizer_new();
    if (s == NULL || f == NULL || cml_u64_map_init(&df, 1 << 16) != CML_OK) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    f->cfg = *cfg;
    f->n_docs = (uint32_t)ds->n;
    for (size_t r = 0; r < ds->n; r++) {
        if ((err = prepare(s, ds->texts[r], strlen(ds->texts[r]))) != CML_OK)
            goto done;
        s->n_terms = 0;
        enumerate_terms(s, f, cfg, collect);
        qsort(s->terms, s->n_terms, sizeof(uint64_t), cmp_u64);
        for (size_t i = 0; i < s->n_terms; i++) {
            if (i > 0 && s->terms[i] == s->terms[i - 1])
                continue;
            int32_t *c = cml_u64_map_upsert(&df, s->terms[i], 0);
            if (c == NULL) {
                err = CML_ERR_NOMEM;
                goto done;
            }
            (*c)++;
        }
    }
    f->keys = cml_malloc(df.n * sizeof(uint64_t));
    f->idf = cml_malloc(df.n * sizeof(float));
    if (f->keys == NULL || f->idf == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < df.cap; i++) {
        uint64_t key = df.keys[i];
        if (key == 0)
            continue;
        uint32_t min_df = (key & 3) == NS_CHAR ? cfg->min_df_chars : cfg->min_df_words;
        if ((uint32_t)df.vals[i] >= min_df)
            f->keys[f->n_vocab++] = key;
    }
    qsort(f->keys, f->n_vocab, sizeof(uint64_t), cmp_u64);
    for (size_t i = 0; i < f->n_vocab; i++) {
        int32_t d = cml_u64_map_get(&df, f->keys[i], 0);
        f->idf[i] = (float)(log((1.0 + ds->n) / (1.0 + d)) + 1.0);
    }
    if ((err = build_index(f)) != CML_OK)
        goto done;
    *out = f;
    f = NULL;
done:
    cml_u64_map_release(&df);
    cml_feature_scratch_free(s);
    cml_featurizer_free(f);
    return err;
}

void cml_featurizer_free(cml_featurizer *f) {
    if (f == NULL)
        return;
    cml_free(f->keys);
    cml_free(f->idf);
    cml_free(f->slots);
    cml_free(f);
}

size_t cml_featurizer_n_cols(const cml_featurizer *f) { return CML_HAND_FEATURES + f->n_vocab; }

const cml_feature_config *cml_featurizer_config(const cml_featurizer *f) { return &f->cfg; }

static int cmp_col(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void cml_csr_free(cml_csr *m) {
    if (m == NULL)
        return;
    cml_free(m->indptr);
    cml_free(m->indices);
    cml_free(m->values);
    memset(m, 0, sizeof(*m));
}

cml_err cml_features_matrix(const cml_featurizer *f, const cml_dataset *ds, cml_csr *out) {
    cml_err err = CML_OK;
    cml_feature_scratch *s = cml_feature_scratch_new();
    size_t cap = 0, nnz = 0;
    int *pairs = NULL; /* (col, value bits) pairs for sorting */
    size_t pairs_cap = 0;
    memset(out, 0, sizeof(*out));
    out->n_rows = ds->n;
    out->n_cols = cml_featurizer_n_cols(f);
    out->indptr = cml_calloc(ds->n + 1, sizeof(size_t));
    if (s == NULL || out->indptr == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    for (size_t r = 0; r < ds->n; r++) {
        cml_sparse row;
        if ((err = cml_features_extract(f, s, ds->texts[r], strlen(ds->texts[r]), &row)) != CML_OK)
            goto done;
        if (nnz + (size_t)row.n > cap) {
            size_t c = cap ? cap * 2 : 1 << 16;
            while (c < nnz + (size_t)row.n)
                c *= 2;
            int *ni = cml_realloc_array(out->indices, c, sizeof(int));
            if (ni == NULL) {
                err = CML_ERR_NOMEM;
                goto done;
            }
            out->indices = ni;
            float *nv = cml_realloc_array(out->values, c, sizeof(float));
            if (nv == NULL) {
                err = CML_ERR_NOMEM;
                goto done;
            }
            out->values = nv;
            cap = c;
        }
        /* Sort the row by column: pack (col, float bits) pairs. */
        if (grow_array((void **)&pairs, &pairs_cap, 2 * (size_t)row.n, sizeof(int)) != CML_OK) {
            err = CML_ERR_NOMEM;
            goto done;
        }
        for (int i = 0; i < row.n; i++) {
            pairs[2 * i] = row.idx[i];
            memcpy(&pairs[2 * i + 1], &row.val[i], sizeof(float));
        }
        qsort(pairs, (size_t)row.n, 2 * sizeof(int), cmp_col);
        for (int i = 0; i < row.n; i++) {
            out->indices[nnz] = pairs[2 * i];
            memcpy(&out->values[nnz], &pairs[2 * i + 1], sizeof(float));
            nnz++;
        }
        out->indptr[r + 1] = nnz;
    }
done:
    cml_free(pairs);
    cml_feature_scratch_free(s);
    if (err != CML_OK)
        cml_csr_free(out);
    return err;
}

/* --- serialisation -------------------------------------------------------- */

cml_err cml_featurizer_serialize(const cml_featurizer *f, uint8_t **buf, size_t *len) {
    cml_buf b = {0};
    cml_buf_put_u32(&b, FEATURIZER_FORMAT);
    cml_buf_put_u32(&b, CML_HAND_FEATURES);
    cml_buf_put_u32(&b, f->cfg.min_df_words);
    cml_buf_put_u32(&b, f->cfg.min_df_chars);
    cml_buf_put_u32(&b, f->cfg.char_min);
    cml_buf_put_u32(&b, f->cfg.char_max);
    cml_buf_put_f32(&b, f->cfg.weight_words);
    cml_buf_put_f32(&b, f->cfg.weight_focus);
    cml_buf_put_f32(&b, f->cfg.weight_chars);
    cml_buf_put_f32(&b, f->cfg.weight_hand);
    cml_buf_put_u32(&b, f->n_docs);
    cml_buf_put_u32(&b, (uint32_t)f->n_vocab);
    for (size_t i = 0; i < f->n_vocab; i++)
        cml_buf_put_u64(&b, f->keys[i]);
    for (size_t i = 0; i < f->n_vocab; i++)
        cml_buf_put_f32(&b, f->idf[i]);
    cml_err err = cml_buf_status(&b);
    if (err != CML_OK) {
        cml_buf_release(&b);
        return err;
    }
    *buf = cml_buf_take(&b, len);
    return CML_OK;
}

cml_err cml_featurizer_deserialize(const uint8_t *buf, size_t len, cml_featurizer **out,
                                   cml_diag *diag) {
    cml_err err = CML_OK;
    cml_reader r = cml_reader_init(buf, len);
    cml_featurizer *f = featurizer_new();
    *out = NULL;
    if (f == NULL)
        return CML_ERR_NOMEM;
    uint32_t format = cml_read_u32(&r), hand = cml_read_u32(&r);
    if (format != FEATURIZER_FORMAT || hand != CML_HAND_FEATURES) {
        err =
            cml_diag_set(diag, CML_ERR_VERSION,
                         "feature format %u with %u hand features is not supported", format, hand);
        goto done;
    }
    f->cfg.min_df_words = cml_read_u32(&r);
    f->cfg.min_df_chars = cml_read_u32(&r);
    f->cfg.char_min = cml_read_u32(&r);
    f->cfg.char_max = cml_read_u32(&r);
    f->cfg.weight_words = cml_read_f32(&r);
    f->cfg.weight_focus = cml_read_f32(&r);
    f->cfg.weight_chars = cml_read_f32(&r);
    f->cfg.weight_hand = cml_read_f32(&r);
    f->n_docs = cml_read_u32(&r);
    uint32_t n_vocab = cml_read_u32(&r);
    if (r.failed || f->cfg.char_min < 1 || f->cfg.char_max < f->cfg.char_min ||
        f->cfg.char_max > 8 || (uint64_t)n_vocab * 12 != r.left) {
        err = cml_diag_set(diag, CML_ERR_FORMAT, "feature section is truncated or inconsistent");
        goto done;
    }
    f->keys = cml_malloc(((size_t)n_vocab + 1) * sizeof(uint64_t));
    f->idf = cml_malloc(((size_t)n_vocab + 1) * sizeof(float));
    if (f->keys == NULL || f->idf == NULL) {
        err = CML_ERR_NOMEM;
        goto done;
    }
    f->n_vocab = n_vocab;
    for (size_t i = 0; i < n_vocab; i++) {
        f->keys[i] = cml_read_u64(&r);
        if (f->keys[i] == 0 || (f->keys[i] & 3) == 3 || (i > 0 && f->keys[i] <= f->keys[i - 1])) {
            err = cml_diag_set(diag, CML_ERR_FORMAT, "feature vocabulary is corrupt");
            goto done;
        }
    }
    for (size_t i = 0; i < n_vocab; i++) {
        f->idf[i] = cml_read_f32(&r);
        if (!isfinite(f->idf[i]) || f->idf[i] < 0) {
            err = cml_diag_set(diag, CML_ERR_FORMAT, "feature weights are corrupt");
            goto done;
        }
    }
    if ((err = build_index(f)) != CML_OK)
        goto done;
    *out = f;
    f = NULL;
done:
    cml_featurizer_free(f);
    return err;
}

void cml_featurizer_column_spaces(const cml_featurizer *f, uint8_t *out) {
    static const uint8_t by_namespace[NS_COUNT] = {
        [NS_WORD] = CML_SPACE_WORDS, [NS_FOCUS] = CML_SPACE_FOCUS, [NS_CHAR] = CML_SPACE_CHARS};
    for (size_t c = 0; c < CML_HAND_FEATURES; c++)
        out[c] = CML_SPACE_HAND;
    for (size_t i = 0; i < f->n_vocab; i++)
        out[CML_HAND_FEATURES + i] = by_namespace[f->keys[i] & 3];
}
