/* SPDX-License-Identifier: MIT
 *
 * Fuzz entry point: what a DICOMweb server's answers go through
 * (net/dicomweb.c): the input's first line is a Content-Type, the rest an
 * answer's body, read as a WADO-RS multipart answer
 * (cxr__multipart_first_part) and as a QIDO-RS DICOM JSON answer
 * (cxr__dicom_json_parse), every attribute of every dataset read as text
 * (cxr__dicom_json_string) and checked as a UID (cxr__dicom_uid_ok).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cxr/cxr.h"
#include "dicomweb-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const uint8_t *eol = memchr (data, '\n', size);
  if (eol == NULL)
    return 0;
  g_autofree char *ct = g_strndup ((const char *) data, (gsize) (eol - data));
  const guint8 *body = eol + 1;
  gsize n = size - (gsize) (body - data);
  gsize off = 0, len = 0;
  if (cxr__multipart_first_part (body, n, ct, "fuzz", &off, &len, NULL))
    g_assert (off <= n && len <= n - off);
  g_autoptr (JsonParser) parser = NULL;
  JsonArray *a = cxr__dicom_json_parse (body, n, "fuzz", &parser, NULL);
  for (guint i = 0; a && i < json_array_get_length (a); i++)
    {
      JsonObject *o = json_array_get_object_element (a, i);
      g_autoptr (GList) tags = json_object_get_members (o);
      for (GList *t = tags; t; t = t->next)
        {
          g_autofree char *v = cxr__dicom_json_string (o, t->data);
          (void) cxr__dicom_uid_ok (v);
        }
    }
  return 0;
}
