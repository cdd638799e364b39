/* The JSON lexing of the native scanner (exporter/_scan.c): whitespace, strings, numbers and
 * ISO-8601 timestamps, each read exactly as the exact Python path reads them, or declined.
 * Included once, by _scan.c: static functions, no state of their own but the string table. */
#ifndef EXPORTER_SCAN_LEX_H
#define EXPORTER_SCAN_LEX_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef unsigned char u8;

/* Results of the parsing helpers. */
#define BAD 0      /* the line goes to the exact path */
#define GOOD 1
#define ERROR (-1) /* a Python exception is set (out of memory) */

#define MAX_INT_DIGITS 18 /* always fits an int64 */

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline int is_ws(u8 c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Equal bytes: keys and category values are short, and a call to memcmp costs more than
 * comparing them here, eight bytes at a time. */
static inline int same(const void *a, const void *b, Py_ssize_t n) {
    const u8 *x = a, *y = b;
    while (n >= 8) {
        uint64_t u, v;
        memcpy(&u, x, 8);
        memcpy(&v, y, 8);
        if (u != v) return 0;
        x += 8;
        y += 8;
        n -= 8;
    }
    while (n--)
        if (*x++ != *y++) return 0;
    return 1;
}

/* The first k bytes of an 8-byte load (k = 0..8), whatever the byte order: set by init_tables. */
static uint64_t FIRST_BYTES[9];

static inline uint64_t load8(const u8 *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Equal bytes where both sides have eight bytes readable from their start (and so past a short
 * string): whole words, the last one overlapping or masked, and no loop for the usual length. */
static inline int same_padded(const u8 *a, const u8 *b, Py_ssize_t n) {
    if (n <= 8) return ((load8(a) ^ load8(b)) & FIRST_BYTES[n]) == 0;
    for (Py_ssize_t k = 0; k + 8 < n; k += 8)
        if (load8(a + k) != load8(b + k)) return 0;
    return load8(a + n - 8) == load8(b + n - 8);
}

static inline const u8 *skip_ws(const u8 *p, const u8 *end) {
    while (p < end && is_ws(*p)) p++;
    return p;
}

/* -- text -------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (strict, as Python decodes), or 0. */
static int utf8_sequence(const u8 *p, const u8 *end) {
    u8 c = p[0];
    int need;
    u8 lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c >= 0xE1 && c <= 0xEF) need = 2;
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else return 0;
    if (end - p <= need) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (int k = 2; k <= need; k++)
        if (p[k] < 0x80 || p[k] > 0xBF) return 0;
    return need + 1;
}

static inline int hex(u8 c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string starting after its opening quote. ``escapes``: whether escape sequences are
 * allowed (skipped values: the simple ones and \u outside the surrogates); mapped values and
 * keys take none, so their bytes are their text. On GOOD, *p is past the closing quote and
 * *ascii says whether every byte was ASCII. */
static u8 PLAIN[256]; /* 1: a byte that stands for itself in a string (printable ASCII) */

static void init_tables(void) {
    for (int c = 0x20; c < 0x80; c++) PLAIN[c] = c != '"' && c != '\\';
    for (int k = 0; k <= 8; k++) {
        u8 bytes[8] = {0};
        memset(bytes, 0xFF, (size_t)k);
        memcpy(&FIRST_BYTES[k], bytes, 8);
    }
}

static int lex_string(const u8 **pp, const u8 *end, int escapes, int *ascii) {
    const u8 *p = *pp;
    *ascii = 1;
    while (p < end) {
        int at_odd = 0; /* p is at the first byte that is not plain */
#ifdef __SSE2__
        /* Sixteen bytes at a time while they are all plain: no quote, no backslash, no
         * control byte, nothing above ASCII (as signed bytes: -1 < c < 0x20 is false only
         * for 0x20..0x7F). */
        const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
        const __m128i space = _mm_set1_epi8(0x1F);
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            __m128i odd = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
            odd = _mm_or_si128(odd, _mm_cmplt_epi8(v, _mm_add_epi8(space, _mm_set1_epi8(1))));
            int mask = _mm_movemask_epi8(odd);
            if (mask) {
#ifdef __GNUC__
                p += __builtin_ctz((unsigned)mask); /* straight to it */
                at_odd = 1;
#endif
                break;
            }
            p += 16;
        }
#endif
        if (!at_odd) {
            while (end - p >= 4 && PLAIN[p[0]] & PLAIN[p[1]] & PLAIN[p[2]] & PLAIN[p[3]]) p += 4;
            while (p < end && PLAIN[*p]) p++;
            if (p >= end) break;
        }
        u8 c = *p;
        if (c == '"') {
            *pp = p + 1;
            return GOOD;
        }
        if (c < 0x20) return BAD;
        if (c == '\\') {
            if (!escapes || p + 1 >= end) return BAD;
            u8 e = p[1];
            if (e == 'u') {
                if (end - p < 6 || !hex(p[2]) || !hex(p[3]) || !hex(p[4]) || !hex(p[5]))
                    return BAD;
                u8 h = p[2] | 0x20, h2 = p[3] | 0x20;
                /* \uD800-\uDFFF: surrogates are left to the exact path */
                if (h == 'd' && ((h2 >= '8' && h2 <= '9') || (h2 >= 'a' && h2 <= 'f')))
                    return BAD;
                p += 6;
                continue;
            }
            if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                e == 'r' || e == 't') {
                p += 2;
                continue;
            }
            return BAD;
        }
        if (c >= 0x80) {
            int len = utf8_sequence(p, end);
            if (!len) return BAD;
            *ascii = 0;
            p += len;
            continue;
        }
        p++;
    }
    return BAD; /* no closing quote on the line */
}

/* -- numbers ----------------------------------------------------------------------------- */

typedef struct {
    const u8 *start;
    Py_ssize_t len;
    int neg, integral, exact; /* exact: every significant digit is in mant */
    uint64_t mant;
    int digits;               /* significant digits read into mant */
    int int_digits;           /* digits before the point (for integers) */
    int exp10;                /* value = mant * 10^exp10 (when exact) */
} Number;

/* The JSON number at p (strict grammar); GOOD with *p past it. */
static int lex_number(const u8 **pp, const u8 *end, Number *n) {
    const u8 *p = *pp;
    n->start = p;
    n->neg = 0;
    n->integral = 1;
    n->exact = 1;
    n->mant = 0;
    n->digits = 0;
    n->int_digits = 0;
    int frac = 0;
    if (p < end && *p == '-') {
        n->neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9') return BAD;
    if (*p == '0') {
        p++;
        n->int_digits = 1;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            if (n->digits < 19) {
                n->mant = n->mant * 10 + (uint64_t)(*p - '0');
                n->digits++;
            } else {
                n->exact = 0;
                frac--; /* a digit not kept: scale by ten */
            }
            n->int_digits++;
            p++;
        }
    }
    if (p < end && *p == '.') {
        n->integral = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9') return BAD;
        while (p < end && *p >= '0' && *p <= '9') {
            if (n->mant == 0 && *p == '0') {
                frac++; /* leading zeros are not significant */
            } else if (n->digits < 19) {
                n->mant = n->mant * 10 + (uint64_t)(*p - '0');
                n->digits++;
                frac++;
            } else if (*p != '0') {
                n->exact = 0;
            }
            p++;
        }
    }
    int exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        n->integral = 0;
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p >= end || *p < '0' || *p > '9') return BAD;
        int edigits = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (++edigits > 4) return BAD; /* an exponent this long is left to the exact path */
            exp = exp * 10 + (*p - '0');
            p++;
        }
        if (eneg) exp = -exp;
    }
    n->exp10 = exp - frac;
    n->len = p - n->start;
    *pp = p;
    return GOOD;
}

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* Eight bytes at a time (SWAR): a log's numbers are mostly a few digits, a point and a few
 * more, and finding where the digits stop and adding them up byte by byte was most of their
 * cost. Little-endian only (the first byte of a load is its lowest); elsewhere lex_number. */
#define DIGITS_ZERO 0x3030303030303030ULL

static const uint64_t POW10_INT[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};

/* How many of the bytes of x (loaded, xor '0') are digits before the first that is not: a
 * digit is a byte below 10. Adding 0x76 sets the top bit of a byte of 10 or more; a carry out
 * of one byte only reaches later bytes, so the first flagged byte is right. */
static inline int digit_run(uint64_t x) {
    uint64_t odd = ((x + 0x7676767676767676ULL) | x) & 0x8080808080808080ULL;
    return odd ? __builtin_ctzll(odd) >> 3 : 8;
}

/* The value of the first n (1..8) digits of x (loaded, xor '0'): shifted up, the bytes below
 * them are leading zeros, then pairs, quads and the whole are summed by three multiplies. */
static inline uint64_t digits_value(uint64_t x, int n) {
    x <<= 8 * (8 - n);
    x = x * 10 + (x >> 8);
    return (((x & 0x000000FF000000FFULL) * 0x000F424000000064ULL) +
            (((x >> 16) & 0x000000FF000000FFULL) * 0x0000271000000001ULL)) >>
           32;
}

/* lex_number for the usual shape, ``-?(0|[1-9]d{0,6})(.d{1,7})?`` with no exponent, as
 * lex_number reads it (the digits all kept: exact, at most 14, so Clinger's path takes it);
 * anything else, or the last bytes of a chunk, goes to lex_number. */
static inline int lex_number_fast(const u8 **pp, const u8 *end, Number *n) {
    const u8 *p = *pp;
    if (end - p < 24) return lex_number(pp, end, n);
    int neg = *p == '-';
    const u8 *q = p + neg;
    uint64_t x = load8(q) ^ DIGITS_ZERO;
    int whole = digit_run(x);
    if (whole == 0 || whole == 8 || (whole > 1 && *q == '0')) return lex_number(pp, end, n);
    q += whole;
    int frac = 0;
    uint64_t mant;
    if (*q == '.') {
        uint64_t y = load8(q + 1) ^ DIGITS_ZERO;
        frac = digit_run(y);
        if (frac == 0 || frac == 8) return lex_number(pp, end, n);
        if (whole + frac <= 8) /* the digits either side of the point as one run: one sum */
            mant = digits_value((x & FIRST_BYTES[whole]) | y << (8 * whole), whole + frac);
        else
            mant = digits_value(x, whole) * POW10_INT[frac] + digits_value(y, frac);
        q += 1 + frac;
    } else {
        mant = digits_value(x, whole);
    }
    if (*q == 'e' || *q == 'E') return lex_number(pp, end, n);
    n->start = p;
    n->len = q - p;
    n->neg = neg;
    n->integral = frac == 0;
    n->exact = 1;
    n->mant = mant;
    n->digits = whole + frac; /* at least the significant ones (leading zeros too): <= 14 */
    n->int_digits = whole;
    n->exp10 = -frac;
    *pp = q;
    return GOOD;
}
#else
#define lex_number_fast lex_number
#endif

/* The correctly rounded double of a number (as msgspec and Python read it). */
static int number_value(const Number *n, double *out) {
    double v;
    if (n->integral) {
        if (n->int_digits > MAX_INT_DIGITS) return BAD;
        /* msgspec reads an integer as an int64 and converts it: -0 is 0.0 */
        int64_t i = (int64_t)n->mant;
        v = (double)(n->neg ? -i : i);
        *out = v;
        return GOOD;
    }
    if (n->exact && n->digits <= 15 && n->exp10 >= -22 && n->exp10 <= 22) {
        /* Clinger's fast path: both operands exact, one correctly rounded operation. */
        v = (double)n->mant;
        if (n->exp10 > 0) v *= POW10[n->exp10];
        else if (n->exp10 < 0) v /= POW10[-n->exp10];
    } else {
        char buffer[64];
        char *copy = buffer;
        if (n->len >= (Py_ssize_t)sizeof buffer) {
            copy = PyMem_Malloc((size_t)n->len + 1);
            if (!copy) return BAD; /* no memory: the exact path reads the line (and says so) */
        }
        memcpy(copy, n->start, (size_t)n->len);
        copy[n->len] = 0;
        char *stop = NULL;
        v = PyOS_string_to_double(copy, &stop, NULL);
        int whole = stop == copy + n->len;
        if (copy != buffer) PyMem_Free(copy);
        if (PyErr_Occurred()) { /* out of range or out of memory: the exact path decides */
            PyErr_Clear();
            return BAD;
        }
        if (!whole) return BAD;
        *out = v;
        if (!isfinite(v) || (v == 0.0 && n->mant != 0)) return BAD; /* overflow, underflow */
        return GOOD;
    }
    if (n->neg) v = -v; /* finite: below 2**53 times a power of ten of at most 22 */
    *out = v;
    return GOOD;
}

/* -- timestamps -------------------------------------------------------------------------- */

static inline int is_digit(u8 c) { return c >= '0' && c <= '9'; }
static inline int two(const u8 *s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

static const int DAYS_BEFORE_MONTH[] = {0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
static const int DAYS_IN_MONTH[] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

/* Epoch seconds of ``YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}][Z|±HH:MM]``, exactly as
 * exporter/timestamps.py reads that shape (integer microseconds, one division). 0 when the
 * text is not of the shape or not a valid time: the caller then hands it to Python. Read in two
 * parts: the minute (the first 16 bytes), which the lines of a log share for a minute at a time
 * (the scanner remembers the last one: IsoMinute), and the rest. */

/* The microseconds since the epoch of ``YYYY-MM-DD[T ]HH:MM`` (s has at least 19 bytes), or 0
 * with *ok unset where it is not a valid minute. */
static int64_t iso_minute(const u8 *s, int *ok) {
    static const int DIGITS[] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15};
    *ok = 0;
    for (int k = 0; k < 12; k++)
        if (!is_digit(s[DIGITS[k]])) return 0;
    if (s[4] != '-' || s[7] != '-' || s[13] != ':') return 0;
    if (s[10] != 'T' && s[10] != ' ') return 0;
    int year = two(s) * 100 + two(s + 2);
    int month = two(s + 5), day = two(s + 8);
    int hour = two(s + 11), minute = two(s + 14);
    if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59) return 0;
    int leap = (year % 4 == 0) && ((year % 100 != 0) || (year % 400 == 0));
    if (day > DAYS_IN_MONTH[month] + (month == 2 ? leap : 0)) return 0;
    int64_t before = year - 1;
    int64_t days = before * 365 + before / 4 - before / 100 + before / 400 - 719162;
    days += DAYS_BEFORE_MONTH[month] + (month > 2 ? leap : 0) + day - 1;
    *ok = 1;
    return (days * 86400 + (int64_t)hour * 3600 + minute * 60) * 1000000LL;
}

/* The last minute read, by its 16 bytes. */
typedef struct {
    uint64_t head[2];
    int64_t micros;
    int known;
} IsoMinute;

static int iso_seconds_from(const u8 *s, Py_ssize_t n, double *out, IsoMinute *memo) {
    if (n < 19 || n > 32) return 0;
    int64_t minute_us;
    uint64_t head0 = load8(s), head1 = load8(s + 8);
    if (memo && memo->known && memo->head[0] == head0 && memo->head[1] == head1) {
        minute_us = memo->micros;
    } else {
        int ok;
        minute_us = iso_minute(s, &ok);
        if (!ok) return 0;
        if (memo) {
            memo->head[0] = head0;
            memo->head[1] = head1;
            memo->micros = minute_us;
            memo->known = 1;
        }
    }
    if (s[16] != ':' || !is_digit(s[17]) || !is_digit(s[18])) return 0;
    int second = two(s + 17);
    if (second > 59) return 0;
    Py_ssize_t pos = 19;
    int64_t fraction = 0;
    if (pos < n && s[pos] == '.') {
        pos++;
        int count = 0;
        while (pos < n && is_digit(s[pos])) {
            if (++count > 6) return 0;
            fraction = fraction * 10 + (s[pos] - '0');
            pos++;
        }
        if (!count) return 0;
        for (int k = count; k < 6; k++) fraction *= 10;
    }
    int64_t offset = 0;
    if (pos < n) {
        if (s[pos] == 'Z' && pos + 1 == n) {
            /* UTC */
        } else if ((s[pos] == '+' || s[pos] == '-') && pos + 6 == n) {
            const u8 *z = s + pos;
            if (!is_digit(z[1]) || !is_digit(z[2]) || z[3] != ':' || !is_digit(z[4]) || !is_digit(z[5]))
                return 0;
            int zh = two(z + 1), zm = two(z + 4);
            if (zh > 23 || zm > 59) return 0;
            offset = (int64_t)zh * 3600 + zm * 60;
            if (s[pos] == '-') offset = -offset;
        } else {
            return 0;
        }
    }
    int64_t total = minute_us + (second - offset) * 1000000LL + fraction;
    if (total >= (1LL << 53) || total <= -(1LL << 53)) return 0;
    *out = (double)total / 1e6;
    return 1;
}

static int iso_seconds(const u8 *s, Py_ssize_t n, double *out) {
    return iso_seconds_from(s, n, out, NULL);
}

#endif /* EXPORTER_SCAN_LEX_H */
