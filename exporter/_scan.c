/* One pass over a chunk of JSON lines, writing the mapped fields straight into columns.
 *
 * Why: decoding each line into a Python object and then moving its attributes into numpy
 * columns cost over a microsecond a line (README, Performance). This scanner reads a strict,
 * plain subset of JSON and writes numbers into float64 columns, text and names into lists of
 * the very values msgspec would have made, and ISO-8601 timestamps into epoch seconds.
 *
 * It answers only for lines it is sure about. Anything else -- an escape in a mapped string or
 * a key, text that is not valid UTF-8, NaN, an integer too long for 64 bits, a duplicate mapped
 * key, a value of another type than the mapping's, deep nesting, broken JSON -- is reported back
 * as a line for the exact path (exporter/decode.py), which gives it today's classification. So a
 * line the scanner accepts is one msgspec's typed decoder accepts with the same values; the
 * differential test (tests/test_native_scan.py) checks that claim on arbitrary lines.
 *
 * Which fields, by what path and of which kind, comes from exporter/scan.py, which also merges
 * these columns with the exact path's rows in line order.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_scan_lex.h"

/* Leaf kinds: what Python type(s) msgspec decodes the mapped value to (exporter/columns.py). */
enum { K_NUMBER = 0, K_CATEGORY = 1, K_TIMESTAMP = 2, K_NAME = 3, K_LABEL = 4 };

#define MAX_SKIP_DEPTH 32

typedef struct {
    char *key;
    Py_ssize_t len;
    int leaf;  /* index into leaves, or -1 */
    int child; /* index into nodes, or -1 */
} Entry;

typedef struct {
    int first;
    int count;
} Node;

typedef struct {
    int kind;
    int column; /* numeric or object column; unused for the timestamp */
} Leaf;

typedef struct {
    PyObject_HEAD
    Entry *entries;
    int n_entries;
    Node *nodes;
    int n_nodes;
    Leaf *leaves;
    int n_leaves;
    int n_num;
    int n_obj;
    double scale;
    int ready; /* set once init has completed: a scanner half built never scans */
} Scanner;

/* A string a column holds, and the bytes it was made from: a category with a few values in
 * turn makes a few strings a chunk, not one a line. The reference is borrowed (the column's
 * list holds it). Direct-mapped by a hash of the bytes: one probe, hit or miss, so a column of
 * unique values (ids) costs one compare a line and a category of a dozen values stays in. */
#define CACHE 64
#define CACHE_BITS 6
typedef struct {
    const u8 *bytes;
    Py_ssize_t len;
    PyObject *text;
} Cached;

/* The bytes from the end of one value to the start of the next that named a mapped key last
 * time: a log writes its keys in one order with the same separators, so most keys are read by
 * comparing these bytes a word at a time, without lexing them. ``first``: whether they were read
 * as an object's first member (no comma before them); the comparison holds only in the same state,
 * since the bytes were read by the generic path in that state and it reads them alike each time. */
#define PREFIX_WORDS 6
typedef struct {
    uint64_t word[PREFIX_WORDS]; /* the bytes, zero after len */
    uint64_t mask;               /* the bytes of the last word that count */
    int len;                     /* 0: none learned */
    int words;
    int first;
    int entry; /* the entry the generic path found for them */
} Prefix;

static inline int prefix_match(const Prefix *x, int first, const u8 *p, const u8 *end) {
    if (!x->len || x->first != first || end - p < (Py_ssize_t)x->words * 8) return 0;
    int last = x->words - 1;
    uint64_t v;
    for (int k = 0; k < last; k++) {
        memcpy(&v, p + 8 * k, 8);
        if (v != x->word[k]) return 0;
    }
    memcpy(&v, p + 8 * last, 8);
    /* and a value after them: the generic path would have skipped more whitespace */
    return ((v ^ x->word[last]) & x->mask) == 0 && p + x->len < end && !is_ws(p[x->len]);
}

static void prefix_learn(Prefix *ways, int first, const u8 *from, Py_ssize_t len, int entry) {
    if (len <= 0 || len > PREFIX_WORDS * 8) return;
    if (ways[0].len) ways[1] = ways[0]; /* two ways: a key that varies between two others */
    Prefix *x = &ways[0];
    u8 bytes[PREFIX_WORDS * 8] = {0}, mask[8] = {0};
    memcpy(bytes, from, (size_t)len);
    memcpy(x->word, bytes, sizeof bytes);
    x->words = (int)((len + 7) / 8);
    memset(mask, 0xFF, (size_t)(len - (x->words - 1) * 8));
    memcpy(&x->mask, mask, 8);
    x->len = (int)len;
    x->first = first;
    x->entry = entry;
}

/* The state of one scan call. */
typedef struct {
    Scanner *s;
    Py_ssize_t row, cap;
    double *num;       /* [n_num][cap] */
    PyObject **obj;    /* [n_obj][cap] */
    double *ts;        /* [cap] */
    u8 *given;         /* [cap] */
    PyObject *raw;     /* the row's timestamp string the scanner could not read, or NULL */
    Py_ssize_t line;   /* the number of the line being read, from 1 */
    Py_ssize_t *seen;  /* [n_entries] the line each mapped key was last read on */
    /* Keys by the bytes before their values, learned per entry: the key after each entry
     * (prefix[2 * (n_entries + node)]: first in the node), in two ways. */
    Prefix *prefix;
    Cached *cache;     /* [n_obj][CACHE] strings made lately, by column */
    IsoMinute minute;  /* the minute of the last ISO-8601 timestamp read */
} Scan;

/* -- values ------------------------------------------------------------------------------ */

/* The string of the text at p (len bytes, already checked: valid UTF-8, no escapes), the one
 * made lately from equal bytes in the column where there is one (column -1: no cache). */
static PyObject *make_text(Scan *sc, int column, const u8 *p, Py_ssize_t len, const u8 *end,
                           int ascii) {
    Cached *slot = NULL;
    if (column >= 0 && end - p >= 8) { /* eight bytes readable: same_padded compares them */
        uint64_t key = len <= 8 ? load8(p) & FIRST_BYTES[len] : load8(p) ^ load8(p + len - 8) << 1;
        key = (key ^ (uint64_t)len) * 0x9E3779B97F4A7C15ULL;
        slot = sc->cache + (Py_ssize_t)column * CACHE + (Py_ssize_t)(key >> (64 - CACHE_BITS));
        if (slot->text && slot->len == len && same_padded(slot->bytes, p, len)) {
            Py_INCREF(slot->text);
            return slot->text;
        }
    }
    PyObject *text;
    if (ascii) {
        text = PyUnicode_New(len, 127);
        if (!text) return NULL;
        memcpy(PyUnicode_1BYTE_DATA(text), p, (size_t)len);
    } else {
        text = PyUnicode_DecodeUTF8((const char *)p, len, "strict");
        if (!text) return NULL; /* valid by lex_string: only memory can fail */
    }
    if (slot) {
        slot->bytes = p;
        slot->len = len;
        slot->text = text;
    }
    return text;
}

static int skip_value(const u8 **pp, const u8 *end, int depth);

static int skip_container(const u8 **pp, const u8 *end, int depth) {
    const u8 *p = *pp;
    u8 close = *p == '{' ? '}' : ']';
    int object = *p == '{';
    if (depth > MAX_SKIP_DEPTH) return BAD;
    p = skip_ws(p + 1, end);
    if (p < end && *p == close) {
        *pp = p + 1;
        return GOOD;
    }
    for (;;) {
        if (object) {
            int ascii;
            if (p >= end || *p != '"') return BAD;
            p++;
            if (lex_string(&p, end, 1, &ascii) != GOOD) return BAD;
            p = skip_ws(p, end);
            if (p >= end || *p != ':') return BAD;
            p = skip_ws(p + 1, end);
        }
        if (skip_value(&p, end, depth + 1) != GOOD) return BAD;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == close) {
            *pp = p + 1;
            return GOOD;
        }
        return BAD;
    }
}

static int literal(const u8 **pp, const u8 *end, const char *word, Py_ssize_t len) {
    if (end - *pp < len || memcmp(*pp, word, (size_t)len) != 0) return BAD;
    *pp += len;
    return GOOD;
}

static int skip_value(const u8 **pp, const u8 *end, int depth) {
    const u8 *p = *pp;
    if (p >= end) return BAD;
    switch (*p) {
    case '"': {
        int ascii;
        p++;
        if (lex_string(&p, end, 1, &ascii) != GOOD) return BAD;
        *pp = p;
        return GOOD;
    }
    case '{':
    case '[':
        return skip_container(pp, end, depth);
    case 't':
        return literal(pp, end, "true", 4);
    case 'f':
        return literal(pp, end, "false", 5);
    case 'n':
        return literal(pp, end, "null", 4);
    default: {
        Number n;
        return lex_number_fast(pp, end, &n);
    }
    }
}

/* A mapped value: stored in its column as msgspec would decode it for the leaf's kind. */
static int leaf_value(Scan *sc, const Leaf *leaf, const u8 **pp, const u8 *end) {
    const u8 *p = *pp;
    Py_ssize_t row = sc->row;
    int kind = leaf->kind;
    if (p >= end) return BAD;
    u8 c = *p;
    PyObject *value = NULL;
    if (c == 'n') {
        if (literal(pp, end, "null", 4) != GOOD) return BAD;
        if (kind == K_NUMBER || kind == K_TIMESTAMP) return GOOD; /* NaN, not given */
        value = Py_None;
        Py_INCREF(value);
    } else if (c == 't' || c == 'f') {
        if (kind != K_CATEGORY && kind != K_LABEL) return BAD;
        if (literal(pp, end, c == 't' ? "true" : "false", c == 't' ? 4 : 5) != GOOD) return BAD;
        value = c == 't' ? Py_True : Py_False;
        Py_INCREF(value);
    } else if (c == '"') {
        if (kind == K_NUMBER) return BAD;
        int ascii;
        const u8 *text = ++p;
        if (lex_string(&p, end, 0, &ascii) != GOOD) return BAD;
        Py_ssize_t len = p - 1 - text;
        *pp = p;
        if (kind == K_TIMESTAMP) {
            double seconds;
            sc->given[row] = 1;
            if (ascii && iso_seconds_from(text, len, &seconds, &sc->minute)) {
                sc->ts[row] = seconds;
                return GOOD;
            }
            sc->raw = make_text(sc, -1, text, len, end, ascii);
            return sc->raw ? GOOD : ERROR;
        }
        value = make_text(sc, leaf->column, text, len, end, ascii);
        if (!value) return ERROR;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        Number n;
        if (lex_number_fast(pp, end, &n) != GOOD) return BAD;
        double v;
        if (kind == K_NUMBER || kind == K_TIMESTAMP || (kind == K_LABEL && !n.integral)) {
            if (number_value(&n, &v) != GOOD) return BAD;
            if (kind == K_NUMBER) {
                sc->num[(Py_ssize_t)leaf->column * sc->cap + row] = v;
                return GOOD;
            }
            if (kind == K_TIMESTAMP) {
                sc->ts[row] = v * sc->s->scale;
                sc->given[row] = 1;
                return GOOD;
            }
            value = PyFloat_FromDouble(v);
        } else {
            if (!n.integral || n.int_digits > MAX_INT_DIGITS) return BAD;
            int64_t i = (int64_t)n.mant;
            value = PyLong_FromLongLong(n.neg ? -i : i);
        }
        if (!value) return ERROR;
    } else {
        return BAD; /* an object or an array where a scalar belongs */
    }
    sc->obj[(Py_ssize_t)leaf->column * sc->cap + row] = value;
    return GOOD;
}

/* An object whose keys are looked up among a node's mapped keys; p is at its '{'. */
static int parse_object(Scan *sc, int node_index, const u8 **pp, const u8 *end) {
    const Node *node = &sc->s->nodes[node_index];
    const Entry *entries = sc->s->entries + node->first;
    const u8 *p = *pp + 1;
    int last = -1; /* the entry of the last mapped key read */
    int first = 1;
    for (;;) {
        Prefix *ways =
            sc->prefix + 2 * (last >= 0 ? node->first + last : sc->s->n_entries + node_index);
        int found;
        if (p < end && *p == '}') { /* as the generic path reads it: no whitespace to skip */
            *pp = p + 1;
            return GOOD;
        }
        if (prefix_match(&ways[0], first, p, end)) {
            found = ways[0].entry;
            p += ways[0].len;
        } else if (prefix_match(&ways[1], first, p, end)) {
            found = ways[1].entry;
            p += ways[1].len;
        } else {
            const u8 *from = p;
            p = skip_ws(p, end);
            if (p < end && *p == '}') {
                *pp = p + 1;
                return GOOD;
            }
            if (!first) {
                if (p >= end || *p != ',') return BAD;
                p = skip_ws(p + 1, end);
            }
            int ascii;
            if (p >= end || *p != '"') return BAD;
            const u8 *key = ++p;
            if (lex_string(&p, end, 0, &ascii) != GOOD) return BAD;
            Py_ssize_t len = p - 1 - key;
            p = skip_ws(p, end);
            if (p >= end || *p != ':') return BAD;
            p = skip_ws(p + 1, end);
            found = -1;
            for (int k = 0; k < node->count; k++) {
                if (entries[k].len == len && same(entries[k].key, key, len)) {
                    found = k;
                    break;
                }
            }
            if (p < end) prefix_learn(ways, first, from, p - from, found);
        }
        first = 0;
        int result;
        if (found < 0) {
            result = skip_value(&p, end, 1);
        } else {
            last = found;
            const Entry *entry = &entries[found];
            int at = node->first + found;
            /* a mapped key twice: the exact path says which */
            if (sc->seen[at] == sc->line) return BAD;
            sc->seen[at] = sc->line;
            if (entry->leaf >= 0) {
                result = leaf_value(sc, &sc->s->leaves[entry->leaf], &p, end);
            } else if (p < end && *p == '{') {
                result = parse_object(sc, entry->child, &p, end);
            } else {
                result = BAD; /* a mapped object that is not one */
            }
        }
        if (result != GOOD) return result;
    }
}

/* Whether the line at p (a '-' or a digit) fails on the exact path wherever it stands, however
 * the lines above leave the stream: its first token is a malformed number, or a number followed,
 * on the same line, by a byte that no JSON text allows after a value (only whitespace, ',', ']'
 * and '}' do). Every decode_lines call that holds the line then fails (as the JSON grammar has
 * it, which msgspec reads strictly), so it takes no part in its neighbours' records: an access
 * log's ``10.0.3.7 - - [...]`` is one such line. A well-formed number that ends the line, or is
 * followed by a separator, could be a value of a record a line above opened: not this. */
static int number_then_junk(const u8 *p, const u8 *end) {
    if (*p == '-') p++;
    if (p >= end || *p < '0' || *p > '9') return 1; /* '-' and no digit */
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && *p == '.') {
        if (++p >= end || *p < '0' || *p > '9') return 1; /* a point and no digit */
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return 1; /* an exponent and no digit */
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    return p < end && !is_ws(*p) && *p != ',' && *p != ']' && *p != '}';
}

/* Whether a line the scanner gave up on could change how its neighbours decode on the exact
 * path: msgspec's decode_lines reads a stream of values, so a line that closes a structure a
 * line above opened, or that holds two values, makes that piece's records depend on its
 * neighbours (exporter/scan.py then decodes the whole piece the exact way). A line that opens
 * a record and at most closes it at its end, that starts with a byte no JSON value can start
 * or continue with (a stray text line), or that fails wherever it stands (number_then_junk),
 * decodes the same wherever it stands. */
static int entangled(const u8 *p, const u8 *end) {
    p = skip_ws(p, end);
    if (p >= end) return 0;
    if (*p == '-' || (*p >= '0' && *p <= '9')) return !number_then_junk(p, end);
    if (*p != '{') return *p == 0 || strchr("[]{}\",:tfn", *p) != NULL;
    int depth = 0, text = 0, closed = 0;
    for (; p < end; p++) {
        u8 c = *p;
        if (closed) {
            if (!is_ws(c)) return 1;
        } else if (text) {
            if (c == '\\') {
                if (end - p < 2) break; /* a last backslash: nothing past it to skip */
                p++;
            } else if (c == '"') {
                text = 0;
            }
        } else if (c == '"') {
            text = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (--depth < 0) return 1;
            if (depth == 0) closed = 1;
        }
    }
    return 0;
}

/* -- the Scanner type -------------------------------------------------------------------- */

static void Scanner_dealloc(Scanner *self) {
    for (int k = 0; k < self->n_entries; k++) PyMem_Free(self->entries[k].key);
    PyMem_Free(self->entries);
    PyMem_Free(self->nodes);
    PyMem_Free(self->leaves);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Scanner(nodes, kinds, scale): nodes[i] is a list of (key: bytes, leaf: int, child: int),
 * node 0 the record itself; kinds[j] the kind of leaf j; scale the timestamp's unit. */
static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwds) {
    PyObject *nodes, *kinds;
    double scale;
    static char *names[] = {"nodes", "kinds", "scale", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!d", names, &PyList_Type, &nodes,
                                     &PyList_Type, &kinds, &scale))
        return -1;
    if (self->entries) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner is initialised once");
        return -1;
    }
    self->scale = scale;
    self->n_nodes = (int)PyList_GET_SIZE(nodes);
    self->n_leaves = (int)PyList_GET_SIZE(kinds);
    int total = 0;
    for (int i = 0; i < self->n_nodes; i++) {
        PyObject *node = PyList_GET_ITEM(nodes, i);
        if (!PyList_Check(node)) {
            PyErr_SetString(PyExc_TypeError, "a node is a list");
            return -1;
        }
        total += (int)PyList_GET_SIZE(node);
    }
    self->nodes = PyMem_Calloc((size_t)self->n_nodes + 1, sizeof(Node));
    self->entries = PyMem_Calloc((size_t)total + 1, sizeof(Entry));
    self->leaves = PyMem_Calloc((size_t)self->n_leaves + 1, sizeof(Leaf));
    if (!self->nodes || !self->entries || !self->leaves) {
        PyErr_NoMemory();
        return -1;
    }
    self->n_entries = total; /* so dealloc frees the keys copied, should init fail midway */
    for (int j = 0; j < self->n_leaves; j++) {
        long kind = PyLong_AsLong(PyList_GET_ITEM(kinds, j));
        if (kind == -1 && PyErr_Occurred()) return -1;
        if (kind < K_NUMBER || kind > K_LABEL) {
            PyErr_SetString(PyExc_ValueError, "unknown leaf kind");
            return -1;
        }
        self->leaves[j].kind = (int)kind;
        if (kind == K_NUMBER) self->leaves[j].column = self->n_num++;
        else if (kind == K_TIMESTAMP) self->leaves[j].column = -1;
        else self->leaves[j].column = self->n_obj++;
    }
    int at = 0;
    for (int i = 0; i < self->n_nodes; i++) {
        PyObject *node = PyList_GET_ITEM(nodes, i);
        self->nodes[i].first = at;
        self->nodes[i].count = (int)PyList_GET_SIZE(node);
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(node); k++, at++) {
            char *key;
            Py_ssize_t len;
            int leaf, child;
            if (!PyArg_ParseTuple(PyList_GET_ITEM(node, k), "y#ii", &key, &len, &leaf, &child))
                return -1;
            if (leaf >= self->n_leaves || child >= self->n_nodes || (leaf < 0) == (child < 0)) {
                PyErr_SetString(PyExc_ValueError, "an entry is one leaf or one node");
                return -1;
            }
            self->entries[at].key = PyMem_Malloc((size_t)len + 1);
            if (!self->entries[at].key) {
                PyErr_NoMemory();
                return -1;
            }
            memcpy(self->entries[at].key, key, (size_t)len);
            self->entries[at].len = len;
            self->entries[at].leaf = leaf;
            self->entries[at].child = child;
        }
    }
    self->ready = 1;
    return 0;
}

static void clear_row(Scan *sc) {
    Scanner *s = sc->s;
    for (int c = 0; c < s->n_obj; c++) {
        PyObject **slot = &sc->obj[(Py_ssize_t)c * sc->cap + sc->row];
        if (*slot && Py_REFCNT(*slot) == 1) { /* its last reference: out of the cache */
            Cached *cache = sc->cache + (Py_ssize_t)c * CACHE;
            for (int k = 0; k < CACHE; k++)
                if (cache[k].text == *slot) cache[k].text = NULL;
        }
        Py_CLEAR(*slot);
    }
    Py_CLEAR(sc->raw);
}

static void start_row(Scan *sc) {
    Scanner *s = sc->s;
    for (int c = 0; c < s->n_num; c++) sc->num[(Py_ssize_t)c * sc->cap + sc->row] = NAN;
    sc->ts[sc->row] = NAN;
    sc->given[sc->row] = 0;
    sc->line++;
}

/* The number of newlines: sixteen bytes a step, counted in byte lanes (a compare is -1 per
 * newline) and summed every 255 steps, before a lane could wrap. */
static Py_ssize_t count_newlines(const u8 *p, const u8 *end) {
    Py_ssize_t count = 0;
#ifdef __SSE2__
    const __m128i newline = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
    while (end - p >= 16) {
        __m128i lanes = zero;
        for (int k = 0; k < 255 && end - p >= 16; k++, p += 16)
            lanes = _mm_sub_epi8(
                lanes, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)p), newline));
        __m128i sums = _mm_sad_epu8(lanes, zero);
        count += _mm_cvtsi128_si32(sums) + _mm_extract_epi16(sums, 4);
    }
#endif
    for (; p < end; p++) count += *p == '\n';
    return count;
}

/* Rows for the records of a chunk, before reading it: the lines of its first 16 KiB scaled to
 * the whole, a quarter more, so that a log's chunk is read once, not once to count its lines
 * and again to parse them (the count was a tenth of the scan). A chunk whose later lines are
 * shorter than its first grows its columns once (grow), to its exact count. */
#define SAMPLE_BYTES (16 << 10)
static Py_ssize_t first_capacity(const u8 *data, const u8 *stop) {
    Py_ssize_t len = stop - data;
    if (len <= SAMPLE_BYTES) return count_newlines(data, stop) + 1;
    Py_ssize_t lines = count_newlines(data, data + SAMPLE_BYTES) + 1;
    return (Py_ssize_t)((double)lines * ((double)len / SAMPLE_BYTES) * 1.25) + 16;
}

/* Room for ``cap`` rows in every column, keeping the rows read: the column-major buffers are
 * made longer and their columns moved apart, the last first (each moves to a place at or past
 * its own, and past every column before it). */
static int grow(Scan *sc, PyObject *numbers, PyObject *seconds, PyObject *given, PyObject *starts,
                Py_ssize_t cap) {
    Scanner *s = sc->s;
    Py_ssize_t old = sc->cap;
    if (PyByteArray_Resize(numbers, (Py_ssize_t)sizeof(double) * cap * s->n_num) < 0 ||
        PyByteArray_Resize(seconds, (Py_ssize_t)sizeof(double) * cap) < 0 ||
        PyByteArray_Resize(given, cap) < 0 ||
        PyByteArray_Resize(starts, (Py_ssize_t)sizeof(int64_t) * cap) < 0)
        return -1;
    PyObject **obj = PyMem_Realloc(sc->obj, ((size_t)(cap * s->n_obj) + 1) * sizeof(PyObject *));
    if (!obj) {
        PyErr_NoMemory();
        return -1;
    }
    sc->obj = obj;
    sc->num = (double *)PyByteArray_AS_STRING(numbers);
    sc->ts = (double *)PyByteArray_AS_STRING(seconds);
    sc->given = (u8 *)PyByteArray_AS_STRING(given);
    for (int c = s->n_num - 1; c > 0; c--)
        memmove(sc->num + c * cap, sc->num + c * old, (size_t)old * sizeof(double));
    for (int c = s->n_obj - 1; c >= 0; c--) {
        if (c > 0) memmove(obj + c * cap, obj + c * old, (size_t)old * sizeof(PyObject *));
        memset(obj + c * cap + old, 0, (size_t)(cap - old) * sizeof(PyObject *));
    }
    sc->cap = cap;
    return 0;
}

/* scan(data) -> (rows, numbers, objects, seconds, given, raw, starts, bad)
 *   rows: records read; numbers: bytearray of float64 [n_num][capacity]; objects: one list of
 *   ``rows`` values per object column; seconds/given: bytearrays (float64, uint8) [capacity];
 *   raw: (row, text) of timestamps not of the common shape; starts: bytearray of int64, each
 *   record's byte offset; bad: (start, end, entangled) of each line left to the exact path.
 *   capacity (at least rows: first_capacity) is len(given). */
static PyObject *Scanner_scan(Scanner *self, PyObject *arg) {
    Py_buffer view;
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner is not initialised");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const u8 *data = view.buf, *stop = data + view.len;
    Py_ssize_t cap = first_capacity(data, stop);

    PyObject *result = NULL, *numbers = NULL, *objects = NULL, *seconds = NULL, *given = NULL;
    PyObject *raw = NULL, *starts = NULL, *bad = NULL;
    Scan sc = {0};
    sc.s = self;
    sc.cap = cap;
    numbers = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)sizeof(double) * cap * self->n_num);
    seconds = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)sizeof(double) * cap);
    given = PyByteArray_FromStringAndSize(NULL, cap);
    starts = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int64_t) * cap);
    raw = PyList_New(0);
    bad = PyList_New(0);
    sc.obj = PyMem_Calloc((size_t)(cap * self->n_obj) + 1, sizeof(PyObject *));
    sc.seen = PyMem_Calloc((size_t)self->n_entries + 1, sizeof(Py_ssize_t));
    sc.prefix = PyMem_Calloc(2 * (size_t)(self->n_entries + self->n_nodes) + 1, sizeof(Prefix));
    sc.cache = PyMem_Calloc((size_t)self->n_obj * CACHE + 1, sizeof(Cached));
    if (!numbers || !seconds || !given || !starts || !raw || !bad || !sc.obj || !sc.seen ||
        !sc.prefix || !sc.cache) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    sc.num = (double *)PyByteArray_AS_STRING(numbers);
    sc.ts = (double *)PyByteArray_AS_STRING(seconds);
    sc.given = (u8 *)PyByteArray_AS_STRING(given);
    int64_t *offsets = (int64_t *)PyByteArray_AS_STRING(starts);

    /* A line is parsed up to the chunk's end, not its own: no part of the parser reads past a
     * newline (not whitespace to JSON lines, not allowed in a string, no part of any token), so
     * a record read whole ends at its newline, and the end of a line is searched for only when
     * the line is left to the exact path. */
    for (const u8 *line = data; line < stop;) {
        const u8 *p = skip_ws(line, stop);
        if (p == stop) break;
        if (*p == '\n') { /* a blank line */
            line = p + 1;
            continue;
        }
        if (sc.row >= sc.cap) { /* more records than guessed: room for every line left */
            Py_ssize_t more = sc.row + count_newlines(line, stop) + 1;
            if (more <= sc.cap) { /* the count is wrong, never the data */
                PyErr_SetString(PyExc_RuntimeError, "the scanner miscounted the lines of a chunk");
                goto done;
            }
            if (grow(&sc, numbers, seconds, given, starts, more) < 0) goto done;
            offsets = (int64_t *)PyByteArray_AS_STRING(starts);
        }
        int outcome = BAD;
        start_row(&sc);
        if (*p == '{') {
            outcome = parse_object(&sc, 0, &p, stop);
            if (outcome == GOOD) {
                p = skip_ws(p, stop);
                if (p < stop && *p != '\n') outcome = BAD;
            }
        }
        if (outcome == ERROR) {
            clear_row(&sc);
            goto done;
        }
        if (outcome == GOOD) {
            if (sc.raw) {
                PyObject *pair = Py_BuildValue("(nN)", sc.row, sc.raw);
                sc.raw = NULL;
                if (!pair || PyList_Append(raw, pair) < 0) {
                    Py_XDECREF(pair);
                    clear_row(&sc);
                    goto done;
                }
                Py_DECREF(pair);
            }
            for (int c = 0; c < self->n_obj; c++) {
                PyObject **slot = &sc.obj[(Py_ssize_t)c * sc.cap + sc.row];
                if (!*slot) {
                    Py_INCREF(Py_None);
                    *slot = Py_None;
                }
            }
            offsets[sc.row] = line - data;
            sc.row++;
            line = p < stop ? p + 1 : stop;
        } else {
            clear_row(&sc);
            const u8 *newline = memchr(line, '\n', (size_t)(stop - line));
            const u8 *end = newline ? newline : stop;
            const u8 *next = newline ? newline + 1 : stop;
            PyObject *item = Py_BuildValue("(nnO)", (Py_ssize_t)(line - data),
                                           (Py_ssize_t)(next - data),
                                           entangled(line, end) ? Py_True : Py_False);
            if (!item || PyList_Append(bad, item) < 0) {
                Py_XDECREF(item);
                goto done;
            }
            Py_DECREF(item);
            line = next;
        }
    }

    objects = PyList_New(self->n_obj);
    if (!objects) goto done;
    for (int c = 0; c < self->n_obj; c++) {
        PyObject *column = PyList_New(sc.row);
        if (!column) goto done;
        for (Py_ssize_t r = 0; r < sc.row; r++) {
            PyObject **slot = &sc.obj[(Py_ssize_t)c * sc.cap + r];
            PyList_SET_ITEM(column, r, *slot); /* the reference moves to the list */
            *slot = NULL;
        }
        PyList_SET_ITEM(objects, c, column);
    }
    result = Py_BuildValue("(nOOOOOOO)", sc.row, numbers, objects, seconds, given, raw, starts,
                           bad);

done:
    if (sc.obj) {
        for (Py_ssize_t k = 0; k < sc.cap * self->n_obj; k++) Py_XDECREF(sc.obj[k]);
        PyMem_Free(sc.obj);
    }
    Py_XDECREF(sc.raw);
    PyMem_Free(sc.seen);
    PyMem_Free(sc.prefix);
    PyMem_Free(sc.cache);
    Py_XDECREF(numbers);
    Py_XDECREF(objects);
    Py_XDECREF(seconds);
    Py_XDECREF(given);
    Py_XDECREF(raw);
    Py_XDECREF(starts);
    Py_XDECREF(bad);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)Scanner_scan, METH_O,
     "scan(data) -> (rows, numbers, objects, seconds, given, raw, starts, bad)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "exporter._scan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Reads the mapped fields of JSON lines into columns (see exporter/scan.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};

static PyObject *iso(PyObject *module, PyObject *arg) {
    /* The C reading of one timestamp, for tests against exporter/timestamps.py. */
    (void)module;
    Py_ssize_t len;
    const char *text = PyUnicode_AsUTF8AndSize(arg, &len);
    double seconds;
    if (!text) return NULL;
    if (!iso_seconds((const u8 *)text, len, &seconds)) Py_RETURN_NONE;
    return PyFloat_FromDouble(seconds);
}

static PyObject *number(PyObject *module, PyObject *arg) {
    /* The C reading of one JSON number (bytes), for tests against Python's float: None where
     * the scanner leaves it to the exact path. Followed by bytes, as in a line, so that it is
     * lexed the way a log's numbers are (the fast lexing wants bytes after the number). */
    (void)module;
    char *text;
    Py_ssize_t len;
    if (PyBytes_AsStringAndSize(arg, &text, &len) < 0) return NULL;
    u8 *padded = PyMem_Malloc((size_t)len + 32);
    if (!padded) return PyErr_NoMemory();
    memcpy(padded, text, (size_t)len);
    memset(padded + len, '}', 32);
    const u8 *p = padded;
    Number n;
    double v;
    int good = lex_number_fast(&p, padded + len + 32, &n) == GOOD && p == padded + len &&
               number_value(&n, &v) == GOOD;
    PyMem_Free(padded);
    if (!good) Py_RETURN_NONE;
    return PyFloat_FromDouble(v);
}

/* count_lines(data) -> int: the newlines of a buffer, for the tailer's line count of every chunk
 * it reads (numpy's compare and count of a megabyte cost ~25 ns a line, this ~5). */
static PyObject *count_lines(PyObject *module, PyObject *arg) {
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const u8 *p = view.buf;
    Py_ssize_t count = count_newlines(p, p + view.len);
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(count);
}

/* codes(values, mapping, default) -> bytearray of int64: ``mapping.get(value, default)`` of each
 * value of a list, as ``Vocabulary.lookup`` asks it. Why in C: a column of a chunk is thousands
 * of values, and numpy.fromiter over map(dict.get) cost ~50 ns a value. The scanner hands out
 * the same string object for a value seen lately in its column, so the answer for an object is
 * remembered (the list keeps it alive, so its address names it for the whole call): most values
 * cost a pointer compare, and the dict is asked only for objects not seen lately. An unhashable
 * value raises TypeError, as dict.get does. */
#define CODE_BITS 6
#define CODE_CACHE (1 << CODE_BITS)
static PyObject *codes(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 3 || !PyList_Check(args[0]) || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "codes(values: list, mapping: dict, default: int)");
        return NULL;
    }
    PyObject *values = args[0], *mapping = args[1];
    long long fallback = PyLong_AsLongLong(args[2]);
    if (fallback == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(values);
    PyObject *out = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)sizeof(int64_t) * n);
    if (!out) return NULL;
    int64_t *result = (int64_t *)PyByteArray_AS_STRING(out);
    PyObject *seen[CODE_CACHE] = {0};
    int64_t known[CODE_CACHE];
    for (Py_ssize_t i = 0; i < n && i < PyList_GET_SIZE(values); i++) {
        PyObject *value = PyList_GET_ITEM(values, i);
        /* by all the address's bits: objects of one size class sit a multiple of their size
         * apart, so its low bits alone left most slots unused (a 12-value category missed) */
        size_t slot = (size_t)(((uint64_t)(uintptr_t)value * 0x9E3779B97F4A7C15ULL) >> (64 - CODE_BITS));
        if (seen[slot] == value) {
            result[i] = known[slot];
            continue;
        }
        PyObject *found = PyDict_GetItemWithError(mapping, value); /* borrowed */
        long long code = fallback;
        if (found) {
            code = PyLong_AsLongLong(found);
            if (code == -1 && PyErr_Occurred()) goto fail;
        } else if (PyErr_Occurred()) {
            goto fail;
        }
        result[i] = code;
        seen[slot] = value;
        known[slot] = code;
    }
    if (PyList_GET_SIZE(values) != n) {
        PyErr_SetString(PyExc_RuntimeError, "the list changed during codes()");
        goto fail;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* own_labels(values, limit) -> bool: whether every value of a list is an exact str of ASCII
 * text of at most ``limit`` characters, and so its own label value (``batch.own_labels``). Why in
 * C: a log with a new model, version and category on every line asks it of four columns of every
 * chunk, and CPython knows whether a string is ASCII (a flag) and its length without reading it. */
static PyObject *own_labels(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "own_labels(values: list, limit: int)");
        return NULL;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(args[1]);
    if (limit == -1 && PyErr_Occurred()) return NULL;
    PyObject *values = args[0];
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        PyObject *value = PyList_GET_ITEM(values, i);
        if (!PyUnicode_CheckExact(value)) Py_RETURN_FALSE;
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(value) < 0) return NULL;
#endif
        if (!PyUnicode_IS_ASCII(value) || PyUnicode_GET_LENGTH(value) > limit) Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

static PyMethodDef module_methods[] = {
    {"iso_seconds", iso, METH_O, "iso_seconds(text) -> float | None"},
    {"number", number, METH_O, "number(text: bytes) -> float | None"},
    {"count_lines", count_lines, METH_O, "count_lines(data) -> int (the newlines of a buffer)"},
    {"codes", (PyCFunction)(void (*)(void))codes, METH_FASTCALL,
     "codes(values, mapping, default) -> bytearray of int64 (mapping.get of each value)"},
    {"own_labels", (PyCFunction)(void (*)(void))own_labels, METH_FASTCALL,
     "own_labels(values, limit) -> bool (every value a str of ASCII text of at most limit)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "exporter._scan",
    "Native columnar scanning of JSON lines (see exporter/scan.py).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scan(void) {
    init_tables();
    if (PyType_Ready(&ScannerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
