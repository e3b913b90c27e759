/* SPDX-License-Identifier: MIT
 *
 * safetensors reader and writer (format: huggingface/safetensors README).
 * Reading checks, in this order: the file is at least 8 bytes; the header
 * length fits in the file and under CXR_SAFETENSORS_MAX_HEADER; the header
 * is a JSON object; every entry has a dtype cxrtrack supports (F32, F16), a
 * shape of at most 8 non-negative dimensions whose element count times the
 * element size does not overflow and equals the byte length given by
 * data_offsets; offsets lie inside the data section; no two tensors
 * overlap; __metadata__ holds only strings. Only then is a tensor read.
 */
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cxr/error.h"
#include "cxr/safetensors.h"
#include "nn-private.h"
#include "safetensors-private.h"
#include "util-private.h"

struct _CxrSafetensors {
  char *path;
  GMappedFile *map;
  const guint8 *data; /* start of the data section */
  gsize data_len;
  GHashTable *tensors;  /* name -> CxrTensorInfo* */
  GHashTable *metadata; /* key -> value */
  char *sha256;
};

void
cxr_safetensors_free (CxrSafetensors *st)
{
  if (st == NULL)
    return;
  if (st->map)
    g_mapped_file_unref (st->map);
  if (st->tensors)
    g_hash_table_unref (st->tensors);
  if (st->metadata)
    g_hash_table_unref (st->metadata);
  g_free (st->path);
  g_free (st->sha256);
  g_free (st);
}

static void
tensor_free (gpointer p)
{
  CxrTensorInfo *t = p;
  g_free ((char *) t->name);
  g_free (t);
}

static gboolean G_GNUC_PRINTF (3, 4) fail (GError **error, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, CXR_ERROR, CXR_ERROR_MODEL, "%s: %s", path, msg);
  return FALSE;
}

static int
compare_offset (gconstpointer a, gconstpointer b)
{
  const CxrTensorInfo *x = *(CxrTensorInfo *const *) a, *y = *(CxrTensorInfo *const *) b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static gboolean
parse_tensor (CxrSafetensors *st, const char *name, JsonNode *node, gsize header_len,
              GError **error)
{
  const char *p = st->path;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return fail (error, p, "tensor '%s': not an object", name);
  JsonObject *o = json_node_get_object (node);
  JsonNode *dt = json_object_get_member (o, "dtype"), *sh = json_object_get_member (o, "shape"),
           *off = json_object_get_member (o, "data_offsets");
  if (!dt || !sh || !off || !JSON_NODE_HOLDS_VALUE (dt) || !JSON_NODE_HOLDS_ARRAY (sh)
      || !JSON_NODE_HOLDS_ARRAY (off) || json_node_get_value_type (dt) != G_TYPE_STRING)
    return fail (error, p, "tensor '%s': needs dtype, shape and data_offsets", name);
  CxrTensorInfo t = { 0 };
  const char *dtype = json_node_get_string (dt);
  gsize esize;
  if (g_str_equal (dtype, "F32"))
    t.dtype = CXR_DTYPE_F32, esize = 4;
  else if (g_str_equal (dtype, "F16"))
    t.dtype = CXR_DTYPE_F16, esize = 2;
  else
    return fail (error, p, "tensor '%s': dtype %s is not supported (F32, F16)", name, dtype);
  JsonArray *sa = json_node_get_array (sh);
  guint nd = json_array_get_length (sa);
  if (nd > CXR_SAFETENSORS_MAX_DIMS)
    return fail (error, p, "tensor '%s': %u dimensions (at most %d)", name, nd,
                 CXR_SAFETENSORS_MAX_DIMS);
  gsize numel = 1;
  for (guint i = 0; i < nd; i++)
    {
      JsonNode *d = json_array_get_element (sa, i);
      if (!JSON_NODE_HOLDS_VALUE (d) || json_node_get_value_type (d) != G_TYPE_INT64
          || json_node_get_int (d) < 0)
        return fail (error, p, "tensor '%s': shape[%u] is not a non-negative integer", name, i);
      t.shape[i] = json_node_get_int (d);
      if (!g_size_checked_mul (&numel, numel, (gsize) t.shape[i]))
        return fail (error, p, "tensor '%s': element count overflows", name);
    }
  gsize nbytes;
  if (!g_size_checked_mul (&nbytes, numel, esize))
    return fail (error, p, "tensor '%s': size overflows", name);
  JsonArray *oa = json_node_get_array (off);
  if (json_array_get_length (oa) != 2)
    return fail (error, p, "tensor '%s': data_offsets needs [begin, end]", name);
  gint64 b = json_array_get_int_element (oa, 0), e = json_array_get_int_element (oa, 1);
  if (b < 0 || e < b)
    return fail (error, p,
                 "tensor '%s': data_offsets [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                 "] are not an interval",
                 name, b, e);
  if ((guint64) e > st->data_len)
    return fail (error, p,
                 "tensor '%s': data ends at byte %" G_GINT64_FORMAT
                 " past the end of the data (%" G_GSIZE_FORMAT " bytes after the %" G_GSIZE_FORMAT
                 "-byte header)",
                 name, e, st->data_len, header_len);
  if ((guint64) (e - b) != nbytes)
    return fail (error, p,
                 "tensor '%s': %" G_GINT64_FORMAT " bytes for shape of %" G_GSIZE_FORMAT
                 " %s elements (%" G_GSIZE_FORMAT " bytes)",
                 name, e - b, numel, dtype, nbytes);
  t.ndim = (int) nd;
  t.numel = numel;
  t.offset = (gsize) b;
  t.nbytes = nbytes;
  t.name = g_strdup (name);
  g_hash_table_insert (st->tensors, (char *) t.name, g_memdup2 (&t, sizeof t));
  return TRUE;
}

/**
 * cxr_safetensors_open:
 * Maps and validates a safetensors file. All errors are CXR_ERROR_MODEL
 * (CXR_ERROR_IO when the file cannot be read), naming the file and tensor.
 *
 * Returns: (transfer full): the file, or %NULL.
 */
CxrSafetensors *
cxr_safetensors_open (const char *path, GError **error)
{
  g_autoptr (GError) io = NULL;
  int fd = cxr__open_regular (path, NULL, error);
  if (fd < 0)
    return NULL;
  GMappedFile *map = g_mapped_file_new_from_fd (fd, FALSE, &io);
  close (fd); /* the mapping stays */
  if (map == NULL)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot read: %s", path, io->message);
      return NULL;
    }
  g_autoptr (CxrSafetensors) st = g_new0 (CxrSafetensors, 1);
  st->path = g_strdup (path);
  st->map = map;
  st->tensors = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, tensor_free);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  gsize len = g_mapped_file_get_length (map);
  const guint8 *bytes = (const guint8 *) g_mapped_file_get_contents (map);

  if (len < 8)
    {
      fail (error, path, "%" G_GSIZE_FORMAT " bytes: too short for a safetensors header", len);
      return NULL;
    }
  guint64 hlen = 0;
  for (int i = 7; i >= 0; i--)
    hlen = (hlen << 8) | bytes[i];
  if (hlen > len - 8)
    {
      fail (error, path,
            "header length %" G_GUINT64_FORMAT " runs past the end of the file (%" G_GSIZE_FORMAT
            " bytes)",
            hlen, len);
      return NULL;
    }
  if (hlen > CXR_SAFETENSORS_MAX_HEADER || hlen < 2)
    {
      fail (error, path, "header length %" G_GUINT64_FORMAT " is out of range", hlen);
      return NULL;
    }
  st->data = bytes + 8 + hlen;
  st->data_len = len - 8 - hlen;

  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) jerr = NULL;
  if (!json_parser_load_from_data (parser, (const char *) bytes + 8, (gssize) hlen, &jerr))
    {
      fail (error, path, "header is not JSON: %s", jerr->message);
      return NULL;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      fail (error, path, "header is not a JSON object");
      return NULL;
    }
  JsonObject *obj = json_node_get_object (root);
  g_autoptr (GList) members = json_object_get_members (obj);
  for (GList *l = members; l; l = l->next)
    {
      const char *name = l->data;
      JsonNode *node = json_object_get_member (obj, name);
      if (g_str_equal (name, "__metadata__"))
        {
          if (!JSON_NODE_HOLDS_OBJECT (node))
            {
              fail (error, path, "__metadata__ is not an object");
              return NULL;
            }
          JsonObject *mo = json_node_get_object (node);
          g_autoptr (GList) keys = json_object_get_members (mo);
          for (GList *k = keys; k; k = k->next)
            {
              JsonNode *v = json_object_get_member (mo, k->data);
              if (!JSON_NODE_HOLDS_VALUE (v) || json_node_get_value_type (v) != G_TYPE_STRING)
                {
                  fail (error, path, "__metadata__ '%s' is not a string", (const char *) k->data);
                  return NULL;
                }
              g_hash_table_insert (st->metadata, g_strdup (k->data),
                                   g_strdup (json_node_get_string (v)));
            }
          continue;
        }
      if (!parse_tensor (st, name, node, (gsize) hlen, error))
        return NULL;
    }
  /* No two tensors may share bytes. */
  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();
  g_autoptr (GList) values = g_hash_table_get_values (st->tensors);
  for (GList *l = values; l; l = l->next)
    g_ptr_array_add (sorted, l->data);
  g_ptr_array_sort (sorted, compare_offset);
  for (guint i = 1; i < sorted->len; i++)
    {
      const CxrTensorInfo *a = sorted->pdata[i - 1], *b = sorted->pdata[i];
      if (b->offset < a->offset + a->nbytes && b->nbytes > 0 && a->nbytes > 0)
        {
          fail (error, path, "tensors '%s' and '%s' overlap", a->name, b->name);
          return NULL;
        }
    }
  return g_steal_pointer (&st);
}

const CxrTensorInfo *
cxr_safetensors_get (CxrSafetensors *st, const char *name)
{
  return g_hash_table_lookup (st->tensors, name);
}

guint
cxr_safetensors_n_tensors (CxrSafetensors *st)
{
  return g_hash_table_size (st->tensors);
}

const char *
cxr_safetensors_metadata (CxrSafetensors *st, const char *key)
{
  return g_hash_table_lookup (st->metadata, key);
}

/**
 * cxr_safetensors_sha256:
 * The SHA-256 of the whole file, hex; computed on the first call (a
 * single `register` call, which never stores its segmenter's provenance,
 * does not pay the 2-3 ms of hashing it).
 */
const char *
cxr_safetensors_sha256 (CxrSafetensors *st)
{
  if (st->sha256 == NULL)
    st->sha256 = cxr__mapped_file_sha256 (st->map);
  return st->sha256;
}

/**
 * cxr__safetensors_file:
 * Returns: (transfer full): the file's mapping, for a model that hashes
 * it only when asked (cxr__mapped_file_sha256).
 */
GMappedFile *
cxr__safetensors_file (CxrSafetensors *st)
{
  return g_mapped_file_ref (st->map);
}

/**
 * cxr__mapped_file_sha256:
 * Returns: (transfer full): the SHA-256 of @map's bytes, hex.
 */
char *
cxr__mapped_file_sha256 (GMappedFile *map)
{
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                      (const guint8 *) g_mapped_file_get_contents (map),
                                      g_mapped_file_get_length (map));
}

/* IEEE 754 binary16 to binary32, subnormals, infinities and NaN included. */
float
cxr__half_to_float (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0)
    {
      if (man == 0)
        bits = sign;
      else
        {
          int e = -1;
          do
            {
              e++;
              man <<= 1;
            }
          while (!(man & 0x400));
          bits = sign | (guint32) (127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    }
  else if (exp == 31)
    bits = sign | 0x7f800000u | man << 13;
  else
    bits = sign | (exp + 127 - 15) << 23 | man << 13;
  float f;
  memcpy (&f, &bits, 4);
  return f;
}

/**
 * cxr_safetensors_read_f32:
 * @out: room for t->numel floats
 * Copies a tensor as floats (little-endian on disk; F16 converted).
 */
gboolean
cxr_safetensors_read_f32 (CxrSafetensors *st, const CxrTensorInfo *t, float *out)
{
  const guint8 *p = st->data + t->offset;
  for (gsize i = 0; i < t->numel; i++)
    {
      if (t->dtype == CXR_DTYPE_F32)
        {
          guint32 b = (guint32) p[4 * i] | (guint32) p[4 * i + 1] << 8
                      | (guint32) p[4 * i + 2] << 16 | (guint32) p[4 * i + 3] << 24;
          memcpy (&out[i], &b, 4);
        }
      else
        out[i] = cxr__half_to_float ((guint16) (p[2 * i] | p[2 * i + 1] << 8));
    }
  return TRUE;
}

/**
 * cxr__safetensors_write:
 * Writes F32 tensors with their metadata (tests and tools use it).
 */
gboolean
cxr__safetensors_write (const char *path, GHashTable *metadata, guint n, const char *const *names,
                        const int *ndims, const gint64 *const *shapes, const float *const *data,
                        GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  if (metadata && g_hash_table_size (metadata))
    {
      json_builder_set_member_name (b, "__metadata__");
      json_builder_begin_object (b);
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init (&it, metadata);
      while (g_hash_table_iter_next (&it, &k, &v))
        {
          json_builder_set_member_name (b, k);
          json_builder_add_string_value (b, v);
        }
      json_builder_end_object (b);
    }
  gsize off = 0;
  g_autofree gsize *sizes = g_new (gsize, n);
  for (guint i = 0; i < n; i++)
    {
      gsize numel = 1;
      for (int d = 0; d < ndims[i]; d++)
        numel *= (gsize) shapes[i][d];
      sizes[i] = numel * 4;
      json_builder_set_member_name (b, names[i]);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "dtype");
      json_builder_add_string_value (b, "F32");
      json_builder_set_member_name (b, "shape");
      json_builder_begin_array (b);
      for (int d = 0; d < ndims[i]; d++)
        json_builder_add_int_value (b, shapes[i][d]);
      json_builder_end_array (b);
      json_builder_set_member_name (b, "data_offsets");
      json_builder_begin_array (b);
      json_builder_add_int_value (b, (gint64) off);
      json_builder_add_int_value (b, (gint64) (off + sizes[i]));
      json_builder_end_array (b);
      json_builder_end_object (b);
      off += sizes[i];
    }
  json_builder_end_object (b);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  gsize hlen;
  g_autofree char *header = json_generator_to_data (gen, &hlen);
  FILE *f = fopen (path, "wb");
  if (f == NULL)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot create", path);
      return FALSE;
    }
  guint8 len8[8];
  for (int i = 0; i < 8; i++)
    len8[i] = (guint8) ((guint64) hlen >> (8 * i));
  gboolean ok = fwrite (len8, 1, 8, f) == 8 && fwrite (header, 1, hlen, f) == hlen;
  for (guint i = 0; ok && i < n; i++)
    ok = fwrite (data[i], 1, sizes[i], f) == sizes[i]; /* little-endian hosts */
  ok = (fclose (f) == 0) && ok;
  if (!ok)
    g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: write failed", path);
  return ok;
}
