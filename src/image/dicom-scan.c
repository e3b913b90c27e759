/* SPDX-License-Identifier: MIT
 *
 * A structural walk of a DICOM file before DCMTK parses it. DCMTK reads
 * nested sequences by recursion and keeps every element it reads, so a
 * small file of deeply nested items overflows its stack (7,000 nested
 * items in 426 KB crashed every reader), and one of millions of empty
 * elements takes gigabytes. This walk reads only element headers, with an
 * explicit stack, and refuses a data set nested deeper than
 * CXR_DICOM_MAX_DEPTH or holding more than CXR_DICOM_MAX_ELEMENTS
 * elements; values are skipped, never read. Anything it cannot follow (a
 * length past the end, a file cut short) ends the walk without a verdict:
 * DCMTK then says what is wrong, as before.
 *
 * Encodings: the file meta group is explicit VR little endian; the data
 * set follows its Transfer Syntax UID (implicit VR little endian, explicit
 * VR big endian, else explicit VR little endian: a deflated data set is
 * walked after cxr__dicom_inflate, whose copy says explicit). A file
 * without the meta group is told explicit or implicit by its first
 * element, as DCMTK guesses. A sequence of unknown VR (UN) with an
 * undefined length holds implicit VR items; encapsulated pixel data
 * holds fragments, skipped whole.
 */
#include <string.h>

#include "cxr/error.h"
#include "dicom-private.h"

typedef struct {
  gsize end;          /* the frame's first byte after it; G_MAXSIZE: until a delimiter */
  gboolean items;     /* a sequence: holds items (else an item: holds elements) */
  gboolean fragments; /* encapsulated pixel data: its items are raw bytes */
  gboolean implicit;  /* the elements inside are implicit VR */
} Frame;

typedef struct {
  const guint8 *d;
  gsize len;
  gboolean big; /* explicit VR big endian */
} Walk;

static guint16
u16 (const Walk *w, gsize at, gboolean big)
{
  const guint8 *b = w->d + at;
  return big ? (guint16) (b[0] << 8 | b[1]) : (guint16) (b[1] << 8 | b[0]);
}

static guint32
u32 (const Walk *w, gsize at, gboolean big)
{
  const guint8 *b = w->d + at;
  return big ? (guint32) b[0] << 24 | (guint32) b[1] << 16 | (guint32) b[2] << 8 | b[3]
             : (guint32) b[3] << 24 | (guint32) b[2] << 16 | (guint32) b[1] << 8 | b[0];
}

static gboolean
is_vr (const guint8 *p)
{
  return p[0] >= 'A' && p[0] <= 'Z' && p[1] >= 'A' && p[1] <= 'Z';
}

/* The meta group's end and the data set's encoding. */
static gsize
meta (Walk *w, gboolean *implicit)
{
  *implicit = FALSE;
  w->big = FALSE;
  gsize at = 0;
  if (w->len >= 132 && memcmp (w->d + 128, "DICM", 4) == 0)
    at = 132;
  char ts[65] = "";
  while (w->len - at >= 8 && u16 (w, at, FALSE) == 0x0002)
    {
      gboolean wide = cxr__dicom_vr_extended (w->d[at + 4], w->d[at + 5]);
      gsize head = wide ? 12 : 8;
      if (w->len - at < head)
        return w->len;
      guint32 n = wide ? u32 (w, at + 8, FALSE) : u16 (w, at + 6, FALSE);
      if (n > w->len - at - head)
        return w->len;
      if (u16 (w, at + 2, FALSE) == 0x0010 && n < sizeof ts)
        {
          memcpy (ts, w->d + at + head, n);
          ts[n] = '\0';
          g_strchomp (ts);
        }
      at += head + n;
    }
  if (*ts)
    {
      *implicit = g_str_equal (ts, "1.2.840.10008.1.2");
      w->big = g_str_equal (ts, "1.2.840.10008.1.2.2");
    }
  else if (w->len - at >= 6)
    *implicit = !is_vr (w->d + at + 4); /* no meta group: DCMTK's guess */
  return at;
}

/**
 * cxr__dicom_check_structure:
 * @data: (array length=len): a whole DICOM file (inflated if it was
 *   deflated)
 *
 * Returns: %FALSE with @error set (CXR_ERROR_LIMIT, naming @name) when
 * the data set nests deeper or holds more elements than DCMTK may be
 * given; %TRUE otherwise, also when the walk could not follow the file.
 */
gboolean
cxr__dicom_check_structure (const char *name, const guint8 *data, gsize len, GError **error)
{
  Walk w = { data, len, FALSE };
  gboolean implicit;
  gsize at = meta (&w, &implicit);
  Frame stack[CXR_DICOM_MAX_DEPTH * 2 + 2];
  int top = 0;
  stack[0] = (Frame){ G_MAXSIZE, FALSE, FALSE, implicit };
  guint64 n_elements = 0;
  while (at < len)
    {
      Frame *f = &stack[top];
      /* frames of a defined length end where they say */
      if (top > 0 && at >= f->end)
        {
          top--;
          continue;
        }
      if (len - at < 8)
        return TRUE;
      gboolean big = w.big && !f->implicit;
      guint16 group = u16 (&w, at, big), element = u16 (&w, at + 2, big);
      if (++n_elements > CXR_DICOM_MAX_ELEMENTS)
        {
          g_set_error (error, CXR_ERROR, CXR_ERROR_LIMIT,
                       "%s: more than %d elements in the data set: not read (a chest film has"
                       " a few hundred)",
                       name, CXR_DICOM_MAX_ELEMENTS);
          return FALSE;
        }
      if (group == 0xFFFE)
        {
          /* an item or a delimiter: a tag and a 4-byte length, no VR */
          guint32 n = u32 (&w, at + 4, big);
          at += 8;
          if (element == 0xE00D || element == 0xE0DD)
            {
              /* the end of an item, or of a sequence (and of its last item
               * if that item had an undefined length) */
              if (top > 0)
                top--;
              continue;
            }
          if (element != 0xE000)
            return TRUE; /* not a DICOM item tag: DCMTK decides */
          if (f->fragments)
            {
              if (n == 0xFFFFFFFFu || n > len - at)
                return TRUE;
              at += n;
              continue;
            }
          if (!f->items && top > 0)
            return TRUE; /* an item outside a sequence */
          if (top + 1 >= (int) G_N_ELEMENTS (stack) || top / 2 + 1 > CXR_DICOM_MAX_DEPTH)
            goto too_deep;
          if (n != 0xFFFFFFFFu && n > len - at)
            return TRUE;
          stack[++top]
              = (Frame){ n == 0xFFFFFFFFu ? G_MAXSIZE : at + n, FALSE, FALSE, f->implicit };
          continue;
        }
      guint32 n;
      gboolean sq = FALSE, un = FALSE, encapsulated = FALSE;
      gsize head;
      if (f->implicit)
        {
          n = u32 (&w, at + 4, FALSE);
          head = 8;
          sq = n == 0xFFFFFFFFu; /* only a sequence has an undefined length */
        }
      else
        {
          const guint8 *vr = data + at + 4;
          gboolean wide = cxr__dicom_vr_extended (vr[0], vr[1]);
          head = wide ? 12 : 8;
          if (len - at < head)
            return TRUE;
          n = wide ? u32 (&w, at + 8, big) : u16 (&w, at + 6, big);
          sq = vr[0] == 'S' && vr[1] == 'Q';
          un = vr[0] == 'U' && vr[1] == 'N';
          encapsulated = n == 0xFFFFFFFFu && !sq && !un;
        }
      at += head;
      if (n != 0xFFFFFFFFu && !sq)
        {
          /* a value: skipped */
          if (n > len - at)
            return TRUE;
          at += n;
          continue;
        }
      if (n != 0xFFFFFFFFu && n > len - at)
        return TRUE;
      if (top + 1 >= (int) G_N_ELEMENTS (stack) || top / 2 + 1 > CXR_DICOM_MAX_DEPTH)
        goto too_deep;
      stack[++top] = (Frame){ n == 0xFFFFFFFFu ? G_MAXSIZE : at + n, TRUE, encapsulated,
                              f->implicit || (un && n == 0xFFFFFFFFu) };
    }
  return TRUE;

too_deep:
  g_set_error (
      error, CXR_ERROR, CXR_ERROR_LIMIT,
      "%s: sequences nested more than %d deep: not read (a chest film's sequences nest a few deep)",
      name, CXR_DICOM_MAX_DEPTH);
  return FALSE;
}
