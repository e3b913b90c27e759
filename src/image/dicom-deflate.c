/* SPDX-License-Identifier: MIT
 *
 * A deflated DICOM data set (Deflated Explicit VR Little Endian,
 * 1.2.840.10008.1.2.1.99) made plain before DCMTK reads it: DCMTK reads
 * a deflated stream through a filter, and through a filter it cannot put
 * off loading a large value, so it allocates whatever length an element
 * declares (image-dicom.cc says why that matters). Here the data set is
 * inflated (up to the file size limit) and the file meta group's
 * Transfer Syntax UID rewritten to Explicit VR Little Endian, its group
 * length adjusted: the same elements, read as a plain file is.
 */
#include <string.h>
#include <zlib.h>

#include "dicom-private.h"
#include "cxr/error.h"

#define DEFLATED "1.2.840.10008.1.2.1.99"
#define EXPLICIT "1.2.840.10008.1.2.1" /* 19 characters: padded with a NUL */

static guint16
le16 (const guint8 *b)
{
  return (guint16) (b[1] << 8 | b[0]);
}

static guint32
le32 (const guint8 *b)
{
  return (guint32) b[3] << 24 | (guint32) b[2] << 16 | (guint32) b[1] << 8 | b[0];
}

static gboolean
holds (const guint8 *p, gsize n, const char *s)
{
  gsize k = strlen (s);
  for (gsize i = 0; i + k <= n; i++)
    if (memcmp (p + i, s, k) == 0)
      return TRUE;
  return FALSE;
}

/* @p[0..n) inflated (raw deflate), up to @cap bytes; a stream that ends
 * early gives what it holds (DCMTK then finds the data set cut short). */
static guint8 *
inflate_all (const guint8 *p, gsize n, guint64 cap, gsize *out_len, const char *name,
             GError **error)
{
  z_stream z;
  memset (&z, 0, sizeof z);
  if (inflateInit2 (&z, -MAX_WBITS) != Z_OK)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_FAILED, "%s: zlib: cannot start inflating", name);
      return NULL;
    }
  gsize size = MIN (MAX (4 * n, 65536), cap), used = 0;
  guint8 *buf = g_malloc (MAX (size, 1));
  z.next_in = (Bytef *) p;
  z.avail_in = (uInt) n; /* n <= the file size limit, under 4 GiB */
  int rc = Z_OK;
  while (rc == Z_OK)
    {
      if (used == size)
        {
          if (size >= cap)
            {
              inflateEnd (&z);
              g_free (buf);
              g_set_error (error, CXR_ERROR, CXR_ERROR_LIMIT,
                           "%s: the deflated data set inflates to more than %llu bytes", name,
                           (unsigned long long) cap);
              return NULL;
            }
          size = MIN (2 * size, cap);
          buf = g_realloc (buf, size);
        }
      z.next_out = buf + used;
      z.avail_out = (uInt) MIN (size - used, G_MAXUINT);
      rc = inflate (&z, Z_NO_FLUSH);
      used = (gsize) (z.next_out - buf);
    }
  inflateEnd (&z);
  if (rc != Z_STREAM_END && rc != Z_BUF_ERROR)
    {
      g_free (buf);
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: not a readable DICOM object (its deflated data set: %s)", name,
                   z.msg ? z.msg : "corrupt");
      return NULL;
    }
  *out_len = used;
  return buf;
}

/* The file meta group (explicit VR little endian) of @data: where the data
 * set starts, and where the group length's value and the Transfer Syntax
 * UID element are (0: none). */
typedef struct {
  gboolean read;     /* the group was walked to its end */
  gboolean deflated; /* its Transfer Syntax UID says deflated */
  gsize end;         /* the data set's first byte */
  gsize group_length_at, ts_at, ts_len;
} Meta;

static Meta
meta_of (const guint8 *data, gsize len)
{
  Meta m = { FALSE, FALSE, 0, 0, 0, 0 };
  if (len < 132 || memcmp (data + 128, "DICM", 4) != 0)
    return m;
  gsize at = 132;
  while (len - at >= 8 && le16 (data + at) == 0x0002)
    {
      guint16 element = le16 (data + at + 2);
      gboolean wide = cxr__dicom_vr_extended (data[at + 4], data[at + 5]);
      gsize head = wide ? 12 : 8;
      if (len - at < head)
        return m;
      guint32 n = wide ? le32 (data + at + 8) : le16 (data + at + 6);
      if (n > len - at - head)
        return m;
      if (element == 0x0000 && n == 4 && !wide)
        m.group_length_at = at + head;
      if (element == 0x0010 && !wide)
        {
          m.ts_at = at;
          m.ts_len = n;
        }
      at += head + n;
    }
  m.read = TRUE;
  m.end = at;
  m.deflated = m.ts_at != 0 && m.ts_len >= strlen (DEFLATED) && m.ts_len <= strlen (DEFLATED) + 1
               && memcmp (data + m.ts_at + 8, DEFLATED, strlen (DEFLATED)) == 0;
  return m;
}

/* 1 when the data set of @data (whose meta group is @m) is deflated, 0
 * when not, -1 when its file meta group could not be read through and the
 * deflated syntax's UID is among its first 4 KiB (DCMTK might yet read it
 * as deflated). */
static int
deflated_of (const Meta *m, const guint8 *data, gsize len)
{
  if (m->deflated)
    return 1;
  if ((!m->read || m->ts_at == 0) && holds (data, MIN (len, 4096), DEFLATED))
    return -1;
  return 0;
}

/**
 * cxr__dicom_inflate:
 * @data: (array length=len): a whole DICOM file
 * @max_bytes: the data set may inflate to at most this many bytes
 * @out: (out) (transfer full): the file made plain, or %NULL when it is
 *   not deflated
 *
 * Returns: %FALSE with @error set when a deflated data set cannot be
 * inflated within @max_bytes, or the file may be deflated but its meta
 * group cannot be read.
 */
gboolean
cxr__dicom_inflate (const char *name, const guint8 *data, gsize len, guint64 max_bytes,
                    guint8 **out, gsize *out_len, GError **error)
{
  *out = NULL;
  *out_len = 0;
  Meta m = meta_of (data, len);
  int d = deflated_of (&m, data, len);
  if (d < 0)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: not a readable DICOM object (a deflated data set whose file meta group "
                   "cannot be read)",
                   name);
      return FALSE;
    }
  if (d == 0)
    return TRUE;
  gsize body_len = 0;
  g_autofree guint8 *body
      = inflate_all (data + m.end, len - m.end, max_bytes, &body_len, name, error);
  if (body == NULL)
    return FALSE;
  gsize ts_new = strlen (EXPLICIT) + 1, head_len = m.end - m.ts_len + ts_new;
  gsize after_ts = m.ts_at + 8 + m.ts_len;
  guint8 *p = g_malloc (head_len + body_len);
  memcpy (p, data, m.ts_at + 6);
  p[m.ts_at + 6] = (guint8) ts_new;
  p[m.ts_at + 7] = 0;
  memcpy (p + m.ts_at + 8, EXPLICIT, ts_new); /* with its NUL */
  memcpy (p + m.ts_at + 8 + ts_new, data + after_ts, m.end - after_ts);
  if (m.group_length_at && m.group_length_at < m.ts_at)
    {
      /* (where it lies after the UID, as no writer puts it, it is left) */
      guint32 gl = le32 (data + m.group_length_at) + (guint32) ts_new - (guint32) m.ts_len;
      for (int k = 0; k < 4; k++)
        p[m.group_length_at + k] = (guint8) (gl >> (8 * k));
    }
  memcpy (p + head_len, body, body_len);
  *out = p;
  *out_len = head_len + body_len;
  return TRUE;
}
