/* SPDX-License-Identifier: MIT
 *
 * The DICOMweb client's checks of what a server sends (net/dicomweb.c)
 * and the push's derived UIDs (pacs/push.c): a UID from the server is
 * used in a URL or a file name only if it is one; a DICOM JSON value is
 * read whatever its kind; a derived UID is the same on every machine
 * (checked against Python's hashlib), valid, and differs for other text.
 * The requests themselves run against a real Orthanc and a badly
 * answering server in tests/cli/dicomweb.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "cxr/cxr.h"
#include "dicomweb-private.h"
#include "pacs-private.h"

static void
test_uid_ok (void **state)
{
  assert_true (cxr__dicom_uid_ok ("1.2.840.10008.5.1.4.1.1.7"));
  assert_true (cxr__dicom_uid_ok ("2.25.184073029931686865464898986830276495543"));
  assert_false (cxr__dicom_uid_ok (NULL));
  assert_false (cxr__dicom_uid_ok (""));
  assert_false (cxr__dicom_uid_ok ("../../etc"));
  assert_false (cxr__dicom_uid_ok ("1.2/3"));
  assert_false (cxr__dicom_uid_ok ("1..2"));
  assert_false (cxr__dicom_uid_ok (".1.2"));
  assert_false (cxr__dicom_uid_ok ("1.2."));
  assert_false (cxr__dicom_uid_ok ("1.2.3 "));
  /* 64 characters, then 65 */
  char uid[66];
  memset (uid, '1', 65);
  uid[65] = '\0';
  uid[1] = '.';
  assert_false (cxr__dicom_uid_ok (uid));
  uid[64] = '\0';
  assert_true (cxr__dicom_uid_ok (uid));
}

static void
test_json_string (void **state)
{
  const char *json = "{\"00100020\": {\"vr\": \"LO\", \"Value\": [\"1543\"]},"
                     " \"00100010\": {\"vr\": \"PN\", \"Value\": [{\"Alphabetic\": \"A^B\"}]},"
                     " \"00201208\": {\"vr\": \"IS\", \"Value\": [3]},"
                     " \"00280030\": {\"vr\": \"DS\", \"Value\": [0.143]},"
                     " \"00080060\": {\"vr\": \"CS\"},"
                     " \"00080061\": {\"vr\": \"CS\", \"Value\": []},"
                     " \"00080018\": \"not an attribute\"}";
  g_autoptr (JsonParser) p = json_parser_new ();
  assert_true (json_parser_load_from_data (p, json, -1, NULL));
  JsonObject *o = json_node_get_object (json_parser_get_root (p));
  g_autofree char *id = cxr__dicom_json_string (o, "00100020");
  g_autofree char *name = cxr__dicom_json_string (o, "00100010");
  g_autofree char *n = cxr__dicom_json_string (o, "00201208");
  g_autofree char *ds = cxr__dicom_json_string (o, "00280030");
  assert_string_equal (id, "1543");
  assert_string_equal (name, "A^B");
  assert_string_equal (n, "3");
  assert_string_equal (ds, "0.143");
  assert_null (cxr__dicom_json_string (o, "00080060")); /* no Value */
  assert_null (cxr__dicom_json_string (o, "00080061")); /* empty */
  assert_null (cxr__dicom_json_string (o, "00080018")); /* not an object */
  assert_null (cxr__dicom_json_string (o, "0020000D")); /* absent */
}

/* A multipart answer is believed only whole: its part found exactly, a
 * cut or mistyped one refused with the reason. */
static void
test_multipart (void **state)
{
  const char *ct = "multipart/related; type=\"application/dicom\"; boundary=\"b-1\"";
  const char *good = "preamble\r\n--b-1\r\nContent-Type: application/dicom\r\n"
                     "Content-Length: 7\r\n\r\nDICM\r\nx\r\n--b-1--\r\n";
  gsize off = 0, len = 0;
  g_autoptr (GError) err = NULL;
  assert_true (
      cxr__multipart_first_part ((const guint8 *) good, strlen (good), ct, "t", &off, &len, &err));
  /* the body holds a CRLF of its own; the CRLF before the boundary is the
   * delimiter's (RFC 2046), not the body's */
  assert_int_equal (len, 7);
  assert_memory_equal (good + off, "DICM\r\nx", 7);
  /* unquoted boundary, upper-case type, no part headers but the blank line */
  const char *bare = "--zz\r\n\r\nAB\r\n--zz--";
  assert_true (cxr__multipart_first_part ((const guint8 *) bare, strlen (bare),
                                          "Multipart/Related; boundary=zz", "t", &off, &len, &err));
  assert_int_equal (off, 8);
  assert_int_equal (len, 2);
  /* cut anywhere before its closing boundary: refused */
  for (gsize cut = 0; cut < strlen (good) - strlen ("--b-1--\r\n") - 2; cut++)
    {
      g_clear_error (&err);
      assert_false (
          cxr__multipart_first_part ((const guint8 *) good, cut, ct, "t", &off, &len, &err));
      assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_NETWORK));
    }
  g_clear_error (&err);
  assert_false (cxr__multipart_first_part (NULL, 0, ct, "t", &off, &len, &err));
  assert_non_null (strstr (err->message, "no boundary"));
  /* not multipart, no boundary, another part type */
  g_clear_error (&err);
  assert_false (cxr__multipart_first_part ((const guint8 *) good, strlen (good), "text/html", "t",
                                           &off, &len, &err));
  assert_non_null (strstr (err->message, "Content-Type 'text/html'"));
  g_clear_error (&err);
  assert_false (cxr__multipart_first_part ((const guint8 *) good, strlen (good),
                                           "multipart/related; type=x", "t", &off, &len, &err));
  const char *json = "--b-1\r\nContent-Type: application/dicom+json\r\n\r\n[]\r\n--b-1--";
  g_clear_error (&err);
  assert_false (
      cxr__multipart_first_part ((const guint8 *) json, strlen (json), ct, "t", &off, &len, &err));
  assert_non_null (strstr (err->message, "'application/dicom+json', not application/dicom"));
}

static void
test_json_parse (void **state)
{
  g_autoptr (GError) err = NULL;
  g_autoptr (JsonParser) p1 = NULL, p2 = NULL, p3 = NULL, p4 = NULL;
  const char *ok = "[{\"0020000D\": {\"vr\": \"UI\", \"Value\": [\"1.2\"]}}, {}]";
  JsonArray *a = cxr__dicom_json_parse ((const guint8 *) ok, strlen (ok), "t", &p1, &err);
  assert_non_null (a);
  assert_int_equal (json_array_get_length (a), 2);
  assert_null (cxr__dicom_json_parse ((const guint8 *) "{}", 2, "t", &p2, &err));
  assert_non_null (strstr (err->message, "not a DICOM JSON array"));
  g_clear_error (&err);
  assert_null (cxr__dicom_json_parse ((const guint8 *) "[{}, 3]", 7, "t", &p3, &err));
  assert_non_null (strstr (err->message, "match 1 is not a DICOM JSON dataset"));
  g_clear_error (&err);
  assert_null (cxr__dicom_json_parse ((const guint8 *) "[{", 2, "t", &p4, &err));
  assert_non_null (strstr (err->message, "not JSON"));
}

static void
test_uid_from_text (void **state)
{
  g_autofree char *a = cxr__uid_from_text ("cxrtrack test");
  g_autofree char *b = cxr__uid_from_text ("cxrtrack test");
  g_autofree char *c = cxr__uid_from_text ("cxrtrack test.");
  /* hashlib.sha256(b"cxrtrack test"), version 8 and variant bits set, as
   * an integer of its first 16 bytes */
  assert_string_equal (a, "2.25.184073029931686865464898986830276495543");
  assert_string_equal (a, b);
  assert_string_not_equal (a, c);
  assert_true (cxr__dicom_uid_ok (c));
}

static void
test_client_refuses (void **state)
{
  g_autoptr (GError) err = NULL;
  assert_null (cxr__dicomweb_new ("ftp://pacs/dicom-web", NULL, NULL, 5, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_INVALID_INPUT));
  g_clear_error (&err);
  /* nothing listens on port 1: the error names the request */
  g_autoptr (CxrDicomweb) c
      = cxr__dicomweb_new ("http://127.0.0.1:1/dicom-web/", NULL, NULL, 5, &err);
  assert_non_null (c);
  assert_string_equal (cxr__dicomweb_url (c), "http://127.0.0.1:1/dicom-web");
  assert_null (cxr__dicomweb_search (c, "studies", "PatientID=1", 10, &err));
  assert_true (g_error_matches (err, CXR_ERROR, CXR_ERROR_NETWORK));
  assert_non_null (strstr (err->message, "GET http://127.0.0.1:1/dicom-web/studies?PatientID=1"));
}

static void
test_auth_file (void **state)
{
  g_autofree char *path = NULL;
  int fd = g_file_open_tmp ("cxr-auth-XXXXXX", &path, NULL);
  assert_true (fd >= 0);
  close (fd);
  g_autoptr (GError) err = NULL;
  assert_true (g_file_set_contents (path, "  user:pa ss  \nsecond line\n", -1, NULL));
  g_autofree char *a = cxr_dicomweb_auth_read (path, &err);
  assert_string_equal (a, "user:pa ss");
  assert_true (g_file_set_contents (path, "\n", -1, NULL));
  assert_null (cxr_dicomweb_auth_read (path, &err));
  assert_non_null (strstr (err->message, "empty"));
  /* a NUL, or more than a line of credentials could be: not a credentials file */
  g_clear_error (&err);
  assert_true (g_file_set_contents (path, "user:pa\0ss\n", 11, NULL));
  assert_null (cxr_dicomweb_auth_read (path, &err));
  assert_non_null (strstr (err->message, "not a credentials file"));
  g_clear_error (&err);
  g_autofree char *big = g_strnfill (9000, 'a');
  assert_true (g_file_set_contents (path, big, -1, NULL));
  assert_null (cxr_dicomweb_auth_read (path, &err));
  assert_non_null (strstr (err->message, "not a credentials file"));
  g_unlink (path);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_uid_ok),        cmocka_unit_test (test_json_string),
    cmocka_unit_test (test_uid_from_text), cmocka_unit_test (test_client_refuses),
    cmocka_unit_test (test_auth_file),     cmocka_unit_test (test_multipart),
    cmocka_unit_test (test_json_parse),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
