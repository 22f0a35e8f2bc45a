#include "config.h"

#include "learn/member.h"

#include <string.h>

#ifdef HAVE_XGBOOST
extern const cml_member_ops cml_member_boosted_trees;
extern const cml_member_ops cml_member_random_forest;
#endif
#ifdef HAVE_FANN
extern const cml_member_ops cml_member_mlp;
#endif

/* Every member kind compiled into this build. */
static const cml_member_ops *const compiled_members[] = {
    &cml_member_logreg,        &cml_member_linear_svm,
    &cml_member_logreg_words,  &cml_member_logreg_chars,
#ifdef HAVE_XGBOOST
    &cml_member_boosted_trees, &cml_member_random_forest,
#endif
#ifdef HAVE_FANN
    &cml_member_mlp,
#endif
};

const cml_member_ops *cml_member_ops_by_kind(cml_member_kind kind) {
    for (size_t i = 0; i < sizeof(compiled_members) / sizeof(compiled_members[0]); i++)
        if (compiled_members[i]->kind == kind)
            return compiled_members[i];
    return NULL;
}

const cml_member_ops *cml_member_ops_by_name(const char *name) {
    for (size_t i = 0; i < sizeof(compiled_members) / sizeof(compiled_members[0]); i++)
        if (name != NULL && strcmp(compiled_members[i]->name, name) == 0)
            return compiled_members[i];
    return NULL;
}
