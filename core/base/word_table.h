/*
 * A fixed set of words looked up by hash: for the word lists the normaliser and the
 * question-form features test on every token (rewrites, word classes). Built once by its
 * owner (under pthread_once, say) and read-only afterwards, so threads share it freely.
 */
#ifndef CML_WORD_TABLE_H
#define CML_WORD_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cml_word_slot {
    const char *word; /* NULL: empty slot; points into the caller's static strings */
    size_t len;
    const char *text; /* what the word stands for (a rewrite), or NULL */
    uint32_t bits;    /* the classes the word belongs to */
} cml_word_slot;

/* slots: caller-owned storage of n_slots (a power of two) zeroed entries. */
typedef struct cml_word_table {
    cml_word_slot *slots;
    size_t n_slots;
    size_t n_words;
} cml_word_table;

/*
 * Adds word (its bits are or-ed into an existing entry; a non-NULL text replaces its text).
 * Returns 0, or -1 when the table is over half full: size the storage for the lists it holds.
 */
int cml_word_table_add(cml_word_table *t, const char *word, uint32_t bits, const char *text);

/* The same for the first len bytes at word (which the table points into: keep them alive). */
int cml_word_table_add_n(cml_word_table *t, const char *word, size_t len, uint32_t bits,
                         const char *text);

/* Adds every word of a list with the same bits; -1 as above. */
int cml_word_table_add_list(cml_word_table *t, const char *const *words, size_t n, uint32_t bits);

/* cml_word_table_add_list for an array whose length the compiler knows. */
#define CML_WORD_TABLE_ADD_ARRAY(t, array, bits)                                                   \
    cml_word_table_add_list((t), (array), sizeof(array) / sizeof((array)[0]), (bits))

/* The entry of the len bytes at w, or NULL when the word is not in the table. */
const cml_word_slot *cml_word_table_find(const cml_word_table *t, const char *w, size_t len);

/* The classes of a word (0 when absent). */
static inline uint32_t cml_word_table_bits(const cml_word_table *t, const char *w, size_t len) {
    const cml_word_slot *s = cml_word_table_find(t, w, len);
    return s ? s->bits : 0;
}

#endif
