/* The XML of List Blobs answers (cml_blob_parse_list) and the list it fills. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azure/blob_client.h"
#include "azure/blob_client_internal.h"
#include "azure/azure_auth.h"
#include "base/cml_alloc.h"

void cml_blob_list_release(cml_blob_list *list) {
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++) {
        cml_free(list->items[i].name);
        cml_free(list->items[i].etag);
        cml_free(list->items[i].last_modified);
    }
    cml_free(list->items);
    list->items = NULL;
    list->n = 0;
}

/*
 * Finds element <tag ...>text</tag> (or <tag/>) in [p, end). On success
 * text and text_len give the raw content, attrs and attrs_len the attribute text,
 * and the return value points past the element; NULL when absent.
 */
static const char *xml_find(const char *p, const char *end, const char *tag, const char **text,
                            size_t *text_len, const char **attrs, size_t *attrs_len) {
    size_t tl = strlen(tag);
    for (; p + tl + 2 <= end; p++) {
        if (p[0] != '<' || memcmp(p + 1, tag, tl) != 0)
            continue;
        char after = p[1 + tl];
        if (after != '>' && after != '/' && after != ' ' && after != '\t' && after != '\r' &&
            after != '\n')
            continue;
        const char *gt = memchr(p, '>', (size_t)(end - p));
        if (gt == NULL)
            return NULL;
        const char *a = p + 1 + tl;
        bool self_closing = gt[-1] == '/';
        if (attrs != NULL) {
            *attrs = a;
            *attrs_len = (size_t)(gt - a) - (self_closing ? 1 : 0);
        }
        if (self_closing) {
            *text = gt;
            *text_len = 0;
            return gt + 1;
        }
        const char *s = gt + 1;
        for (const char *q = s; q + tl + 3 <= end; q++) {
            if (q[0] == '<' && q[1] == '/' && memcmp(q + 2, tag, tl) == 0 && q[2 + tl] == '>') {
                *text = s;
                *text_len = (size_t)(q - s);
                return q + tl + 3;
            }
        }
        return NULL;
    }
    return NULL;
}

/* Decodes XML character references and the five entities: a new string or NULL. */
static char *xml_text(const char *s, size_t n) {
    cml_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '&') {
            cml_buf_put_u8(&b, (uint8_t)s[i]);
            continue;
        }
        const char *semi = memchr(s + i, ';', n - i);
        if (semi == NULL)
            goto bad;
        size_t el = (size_t)(semi - (s + i)) + 1;
        static const struct {
            const char *ent;
            char ch;
        } ents[] = {
            {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        bool done = false;
        for (size_t k = 0; k < sizeof(ents) / sizeof(ents[0]) && !done; k++) {
            if (strlen(ents[k].ent) == el && memcmp(s + i, ents[k].ent, el) == 0) {
                cml_buf_put_u8(&b, (uint8_t)ents[k].ch);
                done = true;
            }
        }
        if (!done) {
            if (el < 4 || s[i + 1] != '#')
                goto bad;
            char num[16];
            if (el - 3 >= sizeof(num))
                goto bad;
            bool hex = s[i + 2] == 'x' || s[i + 2] == 'X';
            blob_copy_str(num, sizeof(num), s + i + (hex ? 3 : 2), el - (hex ? 4 : 3));
            char *e = NULL;
            unsigned long cp = strtoul(num, &e, hex ? 16 : 10);
            if (e == num || *e != '\0' || cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
                goto bad;
            uint8_t u[4];
            size_t ul;
            if (cp < 0x80) {
                u[0] = (uint8_t)cp;
                ul = 1;
            } else if (cp < 0x800) {
                u[0] = (uint8_t)(0xC0 | cp >> 6);
                u[1] = (uint8_t)(0x80 | (cp & 0x3F));
                ul = 2;
            } else if (cp < 0x10000) {
                u[0] = (uint8_t)(0xE0 | cp >> 12);
                u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (uint8_t)(0x80 | (cp & 0x3F));
                ul = 3;
            } else {
                u[0] = (uint8_t)(0xF0 | cp >> 18);
                u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                u[3] = (uint8_t)(0x80 | (cp & 0x3F));
                ul = 4;
            }
            cml_buf_put(&b, u, ul);
        }
        i += el - 1;
    }
    return blob_buf_take_str(&b);
bad:
    cml_buf_release(&b);
    return NULL;
}

cml_err cml_blob_parse_list(const char *xml, size_t len, cml_blob_list *out, char **next_marker) {
    cml_err err = CML_OK;
    const char *end = xml + len, *text, *attrs;
    size_t text_len, attrs_len;
    char *raw_name = NULL;
    *next_marker = NULL;
    if (xml == NULL ||
        xml_find(xml, end, "EnumerationResults", &text, &text_len, NULL, NULL) == NULL) {
        err = CML_ERR_FORMAT;
        goto done;
    }
    const char *body = text, *body_end = text + text_len;
    const char *blobs_text;
    size_t blobs_len;
    const char *after_blobs =
        xml_find(body, body_end, "Blobs", &blobs_text, &blobs_len, NULL, NULL);
    if (after_blobs != NULL) {
        const char *p = blobs_text, *pend = blobs_text + blobs_len;
        const char *bt;
        size_t bl;
        while ((p = xml_find(p, pend, "Blob", &bt, &bl, NULL, NULL)) != NULL) {
            const char *bend = bt + bl, *nt, *pt, *v;
            size_t nl, pl, vl;
            if (xml_find(bt, bend, "Name", &nt, &nl, &attrs, &attrs_len) == NULL) {
                err = CML_ERR_FORMAT;
                goto done;
            }
            cml_blob_item it = {0};
            raw_name = xml_text(nt, nl);
            if (raw_name == NULL) {
                err = CML_ERR_FORMAT;
                goto done;
            }
            /* Names with characters XML cannot carry come percent-encoded. */
            bool encoded = false;
            for (size_t k = 0; k + 14 <= attrs_len; k++)
                if (strncmp(attrs + k, "Encoded=\"true\"", 14) == 0)
                    encoded = true;
            it.name = encoded ? cml_url_decode(raw_name) : raw_name;
            if (encoded) {
                cml_free(raw_name);
            }
            raw_name = NULL;
            if (it.name == NULL) {
                err = CML_ERR_FORMAT;
                goto done;
            }
            if (xml_find(bt, bend, "Properties", &pt, &pl, NULL, NULL) != NULL) {
                const char *pe = pt + pl;
                if (xml_find(pt, pe, "Content-Length", &v, &vl, NULL, NULL) != NULL) {
                    char tmp[32];
                    blob_copy_str(tmp, sizeof(tmp), v, vl);
                    it.length = strtoull(tmp, NULL, 10);
                }
                if (xml_find(pt, pe, "Etag", &v, &vl, NULL, NULL) != NULL) {
                    /* Listings give ETags unquoted; headers quote them: keep the header form. */
                    char *raw = xml_text(v, vl);
                    if (raw != NULL && raw[0] != '"' && strncmp(raw, "W/", 2) != 0) {
                        size_t rl = strlen(raw) + 3;
                        it.etag = cml_malloc(rl);
                        if (it.etag != NULL)
                            snprintf(it.etag, rl, "\"%s\"", raw);
                        cml_free(raw);
                    } else {
                        it.etag = raw;
                    }
                }
                if (xml_find(pt, pe, "Last-Modified", &v, &vl, NULL, NULL) != NULL)
                    it.last_modified = xml_text(v, vl);
            }
            if (it.etag == NULL)
                it.etag = cml_strdup("");
            if (it.last_modified == NULL)
                it.last_modified = cml_strdup("");
            cml_blob_item *items = cml_realloc_array(out->items, out->n + 1, sizeof(cml_blob_item));
            if (items == NULL || it.etag == NULL || it.last_modified == NULL) {
                if (items != NULL)
                    out->items = items;
                cml_free(it.name);
                cml_free(it.etag);
                cml_free(it.last_modified);
                err = CML_ERR_NOMEM;
                goto done;
            }
            out->items = items;
            out->items[out->n++] = it;
        }
    }
    if (xml_find(body, body_end, "NextMarker", &text, &text_len, NULL, NULL) != NULL &&
        text_len > 0) {
        *next_marker = xml_text(text, text_len);
        if (*next_marker == NULL) {
            err = CML_ERR_FORMAT;
            goto done;
        }
    }
done:
    cml_free(raw_name);
    return err;
}
