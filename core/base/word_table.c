#include "config.h"

#include "base/word_table.h"

#include <string.h>
/* Inlined: the words hashed are a few bytes long, where a library call costs more than the
   hash. Same function, same values as libxxhash. */
#define XXH_INLINE_ALL
#include <xxhash.h>

static inline size_t home(const cml_word_table *t, const char *w, size_t len) {
    return (size_t)XXH3_64bits(w, len) & (t->n_slots - 1);
}

const cml_word_slot *cml_word_table_find(const cml_word_table *t, const char *w, size_t len) {
    for (size_t k = home(t, w, len);; k = (k + 1) & (t->n_slots - 1)) {
        const cml_word_slot *s = &t->slots[k];
        if (s->word == NULL)
            return NULL;
        if (s->len == len && memcmp(s->word, w, len) == 0)
            return s;
    }
}

int cml_word_table_add(cml_word_table *t, const char *word, uint32_t bits, const char *text) {
    return cml_word_table_add_n(t, word, strlen(word), bits, text);
}

int cml_word_table_add_n(cml_word_table *t, const char *word, size_t len, uint32_t bits,
                         const char *text) {
    size_t k = home(t, word, len);
    for (; t->slots[k].word != NULL; k = (k + 1) & (t->n_slots - 1)) {
        cml_word_slot *s = &t->slots[k];
        if (s->len == len && memcmp(s->word, word, len) == 0) {
            s->bits |= bits;
            if (text != NULL)
                s->text = text;
            return 0;
        }
    }
    /* Half full at most, so probes stay short and a miss always meets an empty slot. */
    if (2 * (t->n_words + 1) > t->n_slots)
        return -1;
    t->slots[k] = (cml_word_slot){.word = word, .len = len, .text = text, .bits = bits};
    t->n_words++;
    return 0;
}

int cml_word_table_add_list(cml_word_table *t, const char *const *words, size_t n, uint32_t bits) {
    for (size_t i = 0; i < n; i++)
        if (cml_word_table_add(t, words[i], bits, NULL) != 0)
            return -1;
    return 0;
}
