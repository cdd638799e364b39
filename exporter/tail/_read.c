/* Whole lines from a file in one copy: the tailer's read of every chunk (exporter/tail/tailer.py).
 *
 * Why: read into a reused buffer, a chunk was then copied again to join the pending partial
 * line, searched once for NUL bytes and once more to count its lines. Those three passes over
 * each megabyte cost more than the read itself (~0.15 s of CPU for a 660 MB log against ~0.1 s
 * for the reads). Here the kernel writes the read straight behind the partial line, into the
 * bytes object that is handed out, and one pass counts the newlines and NULs while the read is
 * still in cache. The whole lines are cut off the end in place.
 *
 * The rules (BOM, NUL, over-long lines, settled offsets) stay in exporter/tail/linebuf.py; this
 * only says where the read's lines end, so a read holding a NUL is left to those rules whole.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef unsigned char u8;

/* Newlines and NUL bytes of a buffer: sixteen bytes a step, counted in byte lanes (a compare is
 * -1 per match) and summed every 255 steps, before a lane could wrap. */
static void count_bytes(const u8 *p, const u8 *end, Py_ssize_t *newlines, Py_ssize_t *nuls) {
    Py_ssize_t lines = 0, zeros = 0;
#ifdef __SSE2__
    const __m128i newline = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
    while (end - p >= 16) {
        __m128i nl_lanes = zero, nul_lanes = zero;
        for (int k = 0; k < 255 && end - p >= 16; k++, p += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            nl_lanes = _mm_sub_epi8(nl_lanes, _mm_cmpeq_epi8(v, newline));
            nul_lanes = _mm_sub_epi8(nul_lanes, _mm_cmpeq_epi8(v, zero));
        }
        __m128i sums = _mm_sad_epu8(nl_lanes, zero);
        lines += _mm_cvtsi128_si32(sums) + _mm_extract_epi16(sums, 4);
        sums = _mm_sad_epu8(nul_lanes, zero);
        zeros += _mm_cvtsi128_si32(sums) + _mm_extract_epi16(sums, 4);
    }
#endif
    for (; p < end; p++) {
        lines += *p == '\n';
        zeros += *p == 0;
    }
    *newlines = lines;
    *nuls = zeros;
}

/* Headroom for the pending partial line, in steps of this many bytes (a line is mostly far less). */
#define HEADROOM (64 << 10)

/* A bytes object made shorter in place: its length and the NUL that always follows. The block
 * keeps its allocated size (free takes the address alone). */
static void cut(PyObject *bytes, Py_ssize_t length) {
    Py_SET_SIZE(bytes, length);
    PyBytes_AS_STRING(bytes)[length] = '\0';
}

/* read_lines(fd, head, size, offset) -> (lines, rest, read, newlines, nuls)
 *
 * Reads up to ``size`` bytes at ``offset`` (one pread, retried on EINTR; OSError as os.pread
 * raises it) and puts them behind ``head``. ``lines`` is head + read up to and including the
 * read's last newline (b"" when it has none), ``rest`` what follows; ``newlines`` and ``nuls``
 * count the read's bytes. When the read holds a NUL, nothing is cut: ``lines`` is None and
 * ``rest`` is head + read, whole. */
static PyObject *read_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 4 || !PyBytes_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "read_lines(fd: int, head: bytes, size: int, offset: int)");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred()) return NULL;
    if (fd < 0 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "read_lines: not a file descriptor");
        return NULL;
    }
    Py_ssize_t size = PyLong_AsSsize_t(args[2]);
    if (size == -1 && PyErr_Occurred()) return NULL;
    long long offset = PyLong_AsLongLong(args[3]);
    if (offset == -1 && PyErr_Occurred()) return NULL;
    if (size < 0 || offset < 0) {
        PyErr_SetString(PyExc_ValueError, "read_lines: size and offset must not be negative");
        return NULL;
    }
    PyObject *head = args[1];
    Py_ssize_t kept = PyBytes_GET_SIZE(head);
    /* Every buffer is allocated at one size (headroom for the partial line in whole steps), and
     * cut by its length alone, never reallocated: a megabyte freed is then the very block the
     * next read asks for. Sized to fit, each buffer missed the hole its predecessor left by a
     * few bytes, and the heap grew past a hundred megabytes in a catch-up. */
    Py_ssize_t room = (kept + HEADROOM - 1) / HEADROOM * HEADROOM;
    if (size > PY_SSIZE_T_MAX - room) return PyErr_NoMemory();
    PyObject *buffer = PyBytes_FromStringAndSize(NULL, room + size);
    if (!buffer) return NULL;
    u8 *data = (u8 *)PyBytes_AS_STRING(buffer);
    memcpy(data, PyBytes_AS_STRING(head), (size_t)kept);
    ssize_t got;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        got = pread((int)fd, data + kept, (size_t)size, (off_t)offset);
        Py_END_ALLOW_THREADS
        if (got >= 0 || errno != EINTR) break;
        if (PyErr_CheckSignals() < 0) goto fail;
    }
    if (got < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    const u8 *read = data + kept, *stop = read + got;
    Py_ssize_t newlines, nuls;
    count_bytes(read, stop, &newlines, &nuls);
    Py_ssize_t end = 0; /* the cut, just past the read's last newline; 0: none */
    if (newlines && !nuls) {
        const u8 *last = stop - 1;
        while (*last != '\n') last--;
        end = last + 1 - data;
    }
    PyObject *lines, *rest;
    if (end == 0) {
        /* a copy of its own: the partial line is kept until its newline comes, maybe long
         * after, and should not hold a megabyte while it waits */
        rest = PyBytes_FromStringAndSize((const char *)data, kept + got);
        Py_DECREF(buffer);
        if (!rest) return NULL;
        if (nuls) {
            lines = Py_None;
            Py_INCREF(lines);
        } else {
            lines = PyBytes_FromStringAndSize(NULL, 0);
            if (!lines) {
                Py_DECREF(rest);
                return NULL;
            }
        }
    } else {
        rest = PyBytes_FromStringAndSize((const char *)data + end, kept + got - end);
        if (!rest) goto fail;
        lines = buffer;
        cut(lines, end);
    }
    return Py_BuildValue("(NNnnn)", lines, rest, (Py_ssize_t)got, newlines, nuls);
fail:
    Py_DECREF(buffer);
    return NULL;
}

static PyMethodDef module_methods[] = {
    {"read_lines", (PyCFunction)(void (*)(void))read_lines, METH_FASTCALL,
     "read_lines(fd, head, size, offset) -> (lines, rest, read, newlines, nuls)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "exporter.tail._read",
    "Whole lines from a file in one copy (see exporter/tail/tailer.py).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__read(void) { return PyModule_Create(&module); }
