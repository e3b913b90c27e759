/* SPDX-License-Identifier: MIT
 *
 * A DICOMweb client (DICOM PS3.18) over libcurl: what `ingest --dicomweb`
 * needs from a PACS, and what a push sends back.
 *
 *   - QIDO-RS searches (GET .../studies?..., .../instances): the answer
 *     is DICOM JSON (PS3.18 F.2), an array of datasets; searches are paged
 *     with limit and offset, and a server that ignores offset (the same
 *     first match twice) ends the paging instead of looping;
 *   - WADO-RS retrieval of one instance (GET .../instances/UID with
 *     Accept: multipart/related; type="application/dicom"): the answer
 *     streams to a file beside the destination, never into memory, is
 *     checked to be one complete multipart part of type application/dicom,
 *     and only then is that part renamed into place, so a destination that
 *     exists is always a whole object;
 *   - STOW-RS (POST .../studies/UID, multipart/related) of objects made in
 *     memory.
 *
 * Every answer is checked before it is believed: the HTTP status, the
 * Content-Type, the size against the caller's limit (a Content-Length over
 * it is refused before a byte is read, a body that outgrows it is cut), a
 * multipart body's closing boundary (a truncated one is an error, not a
 * short film). Errors (CXR_ERROR_NETWORK, CXR_ERROR_LIMIT) name the
 * request and what was wrong with the answer.
 *
 * Credentials come from the caller (an auth file or the environment, never
 * the command line): "user:password" is sent as HTTP Basic, anything else
 * (with or without a leading "Bearer ") as a bearer token. TLS is verified
 * (libcurl's default, kept: the certificate against the system's CAs, or
 * the caller's CA file, and the host name); redirects are not followed, so credentials go
 * to the server named and nowhere else. A transfer that receives nothing
 * for timeout_s seconds is abandoned (a large film on a slow link is not);
 * connecting may take as long, at most 30 s.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <dlfcn.h>
#include <glib/gstdio.h>

#include "cxr-config.h"
#include "cxr/error.h"
#include "dicomweb-private.h"

#define SEARCH_MAX_BYTES (256u << 20) /* a QIDO answer: 256 MiB of JSON */
#define SNIPPET          160          /* bytes of an error body quoted */

struct _CxrDicomweb {
  CURL *curl;
  char *url; /* the service root, no trailing '/' */
  char *user_password;
  char *bearer;  /* "Authorization: Bearer ..." */
  char *ca_file; /* CA certificates to verify the server with, or NULL: the system's */
  double timeout_s;
  long last_status; /* the last answer's HTTP status, 0 none */
  char errbuf[CURL_ERROR_SIZE];
};

/* Where an answer goes: memory or a file, at most max bytes. */
typedef struct {
  GByteArray *mem;
  FILE *file;
  guint64 n, max;
  gboolean over; /* cut at max */
  gboolean write_failed;
  gint64 active_us;  /* when bytes last came or went */
  curl_off_t sent;   /* bytes sent so far */
  gint64 timeout_us; /* a transfer idle this long is abandoned */
  gboolean stalled;
} Sink;

static size_t
sink_write (char *data, size_t size, size_t nmemb, void *user)
{
  Sink *s = user;
  size_t n = size * nmemb;
  if (s->n + n > s->max)
    {
      s->over = TRUE;
      return 0; /* libcurl stops with CURLE_WRITE_ERROR */
    }
  if (s->file)
    {
      if (fwrite (data, 1, n, s->file) != n)
        {
          s->write_failed = TRUE;
          return 0;
        }
    }
  else
    g_byte_array_append (s->mem, (const guint8 *) data, (guint) n);
  s->n += n;
  s->active_us = g_get_monotonic_time ();
  return n;
}

/* Called by libcurl about once a second: abandons a transfer that has
 * moved no byte either way for timeout_us (libcurl's own low-speed check
 * averages over several seconds, so a stall after some data would last
 * several seconds longer than asked). */
static int
sink_progress (void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
               curl_off_t ulnow)
{
  Sink *s = user;
  (void) dltotal, (void) dlnow, (void) ultotal;
  gint64 now = g_get_monotonic_time ();
  if (ulnow != s->sent)
    {
      s->sent = ulnow;
      s->active_us = now;
    }
  if (now - s->active_us > s->timeout_us)
    {
      s->stalled = TRUE;
      return 1; /* CURLE_ABORTED_BY_CALLBACK */
    }
  return 0;
}

/* libcurl, loaded when a client is first made: linked, its two dozen
 * libraries (TLS, HTTP/2, Kerberos, LDAP...) cost every cxrtrack process
 * about 5 ms to load, and only the PACS commands use it. */
static struct {
  CURLcode (*global_init) (long flags);
  CURL *(*easy_init) (void);
  CURLcode (*easy_setopt) (CURL *h, CURLoption option, ...);
  CURLcode (*easy_perform) (CURL *h);
  CURLcode (*easy_getinfo) (CURL *h, CURLINFO info, ...);
  void (*easy_reset) (CURL *h);
  void (*easy_cleanup) (CURL *h);
  const char *(*easy_strerror) (CURLcode code);
  struct curl_slist *(*slist_append) (struct curl_slist *list, const char *s);
  void (*slist_free_all) (struct curl_slist *list);
} lib;

/* NULL when libcurl is loaded and initialised, else why not (static). */
static gpointer
load_libcurl (gpointer data)
{
  (void) data;
  static char why[512];
  void *h = dlopen ("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL)
    {
      g_snprintf (why, sizeof why, "%s (apt-get install libcurl4)", dlerror ());
      return why;
    }
  struct {
    const char *name;
    void **fn;
  } table[] = {
    { "curl_global_init", (void **) &lib.global_init },
    { "curl_easy_init", (void **) &lib.easy_init },
    { "curl_easy_setopt", (void **) &lib.easy_setopt },
    { "curl_easy_perform", (void **) &lib.easy_perform },
    { "curl_easy_getinfo", (void **) &lib.easy_getinfo },
    { "curl_easy_reset", (void **) &lib.easy_reset },
    { "curl_easy_cleanup", (void **) &lib.easy_cleanup },
    { "curl_easy_strerror", (void **) &lib.easy_strerror },
    { "curl_slist_append", (void **) &lib.slist_append },
    { "curl_slist_free_all", (void **) &lib.slist_free_all },
  };
  for (guint i = 0; i < G_N_ELEMENTS (table); i++)
    if ((*table[i].fn = dlsym (h, table[i].name)) == NULL)
      {
        g_snprintf (why, sizeof why, "libcurl.so.4 has no %s", table[i].name);
        return why;
      }
  if (lib.global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return (gpointer) "libcurl could not be initialised";
  return NULL;
}

/**
 * cxr__dicomweb_new:
 * @url: the service root (http:// or https://), e.g.
 *   http://pacs:8042/dicom-web
 * @auth: (nullable): "user:password", "Bearer TOKEN" or a token
 * @ca_file: (nullable): PEM certificates of the CAs to trust instead of
 *   the system's (a hospital's own CA)
 * @timeout_s: how long a transfer may receive nothing before it is
 *   abandoned (and the time allowed to connect, at most 30 s)
 *
 * Returns: (transfer full): the client, or %NULL with @error set.
 */
CxrDicomweb *
cxr__dicomweb_new (const char *url, const char *auth, const char *ca_file, double timeout_s,
                   GError **error)
{
  static GOnce once = G_ONCE_INIT;
  g_return_val_if_fail (url != NULL, NULL);
  if (!g_str_has_prefix (url, "http://") && !g_str_has_prefix (url, "https://"))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: a DICOMweb URL starts with http:// or https://", url);
      return NULL;
    }
  const char *why = g_once (&once, load_libcurl, NULL);
  if (why)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_NETWORK, "DICOMweb needs libcurl: %s", why);
      return NULL;
    }
  CxrDicomweb *c = g_new0 (CxrDicomweb, 1);
  c->curl = lib.easy_init ();
  if (c->curl == NULL)
    {
      g_free (c);
      g_set_error (error, CXR_ERROR, CXR_ERROR_NETWORK, "libcurl could not make a handle");
      return NULL;
    }
  c->url = g_strdup (url);
  c->ca_file = g_strdup (ca_file);
  gsize n = strlen (c->url);
  while (n > 0 && c->url[n - 1] == '/')
    c->url[--n] = '\0';
  c->timeout_s = timeout_s > 0 ? timeout_s : 60;
  if (auth && *auth)
    {
      const char *token = g_str_has_prefix (auth, "Bearer ") ? auth + 7 : auth;
      if (token == auth && strchr (auth, ':'))
        c->user_password = g_strdup (auth);
      else
        c->bearer = g_strdup_printf ("Authorization: Bearer %s", token);
    }
  return c;
}

void
cxr__dicomweb_free (CxrDicomweb *c)
{
  if (c == NULL)
    return;
  lib.easy_cleanup (c->curl);
  if (c->user_password)
    memset (c->user_password, 0, strlen (c->user_password));
  if (c->bearer)
    memset (c->bearer, 0, strlen (c->bearer));
  g_free (c->user_password);
  g_free (c->bearer);
  g_free (c->ca_file);
  g_free (c->url);
  g_free (c);
}

const char *
cxr__dicomweb_url (const CxrDicomweb *c)
{
  return c->url;
}

/* The HTTP status of the last answer (0: none came). */
long
cxr__dicomweb_last_status (const CxrDicomweb *c)
{
  return c->last_status;
}

/* The first bytes of an error answer, printable, for the message. */
static char *
snippet (const guint8 *data, gsize n)
{
  GString *s = g_string_new (NULL);
  for (gsize i = 0; i < n && s->len < SNIPPET; i++)
    g_string_append_c (s, data[i] >= 0x20 && data[i] < 0x7f ? (char) data[i] : ' ');
  return g_strstrip (g_string_free (s, FALSE));
}

static char *
file_snippet (FILE *f)
{
  guint8 buf[SNIPPET];
  rewind (f);
  gsize n = fread (buf, 1, sizeof buf, f);
  return snippet (buf, n);
}

/* Runs one request with @header (NULL-terminated) sent; the body goes to
 * @sink. On success *@content_type is the answer's (transfer full, maybe
 * NULL) and the status was 2xx. */
static gboolean
perform (CxrDicomweb *c, const char *method, const char *url, const char *const *header,
         const void *body, gsize body_len, Sink *sink, long *status, char **content_type,
         GError **error)
{
  CURL *h = c->curl;
  struct curl_slist *headers = NULL;
  for (; header && *header; header++)
    headers = lib.slist_append (headers, *header);
  if (c->bearer)
    headers = lib.slist_append (headers, c->bearer);
  lib.easy_reset (h);
  c->errbuf[0] = '\0';
  lib.easy_setopt (h, CURLOPT_URL, url);
  lib.easy_setopt (h, CURLOPT_ERRORBUFFER, c->errbuf);
  lib.easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  lib.easy_setopt (h, CURLOPT_PROTOCOLS_STR, "http,https");
  lib.easy_setopt (h, CURLOPT_FOLLOWLOCATION, 0L);
  if (c->ca_file)
    lib.easy_setopt (h, CURLOPT_CAINFO, c->ca_file);
  lib.easy_setopt (h, CURLOPT_CONNECTTIMEOUT_MS, (long) (MIN (c->timeout_s, 30.0) * 1000));
  sink->timeout_us = (gint64) (c->timeout_s * 1e6);
  sink->active_us = g_get_monotonic_time ();
  lib.easy_setopt (h, CURLOPT_NOPROGRESS, 0L);
  lib.easy_setopt (h, CURLOPT_XFERINFOFUNCTION, sink_progress);
  lib.easy_setopt (h, CURLOPT_XFERINFODATA, sink);
  lib.easy_setopt (h, CURLOPT_WRITEFUNCTION, sink_write);
  lib.easy_setopt (h, CURLOPT_WRITEDATA, sink);
  lib.easy_setopt (h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) sink->max);
  lib.easy_setopt (h, CURLOPT_USERAGENT, "cxrtrack/" CXR_VERSION);
  if (c->user_password)
    {
      lib.easy_setopt (h, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
      lib.easy_setopt (h, CURLOPT_USERPWD, c->user_password);
    }
  lib.easy_setopt (h, CURLOPT_HTTPHEADER, headers);
  if (g_str_equal (method, "POST"))
    {
      lib.easy_setopt (h, CURLOPT_POST, 1L);
      lib.easy_setopt (h, CURLOPT_POSTFIELDS, body);
      lib.easy_setopt (h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_len);
    }
  CURLcode rc = lib.easy_perform (h);
  lib.easy_setopt (h, CURLOPT_HTTPHEADER, NULL);
  lib.slist_free_all (headers);
  *status = 0;
  lib.easy_getinfo (h, CURLINFO_RESPONSE_CODE, status);
  c->last_status = *status;
  const char *ct = NULL;
  lib.easy_getinfo (h, CURLINFO_CONTENT_TYPE, &ct);
  *content_type = g_strdup (ct);
  if (rc != CURLE_OK)
    {
      if (sink->over || rc == CURLE_FILESIZE_EXCEEDED)
        g_set_error (error, CXR_ERROR, CXR_ERROR_LIMIT,
                     "%s %s: the answer is larger than the limit of %" G_GUINT64_FORMAT
                     " bytes, not read",
                     method, url, sink->max);
      else if (sink->write_failed)
        g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s %s: cannot write the answer: %s", method,
                     url, g_strerror (errno));
      else if (sink->stalled)
        g_set_error (
            error, CXR_ERROR, CXR_ERROR_NETWORK,
            "%s %s: nothing received for %g s (--timeout), given up after %" G_GUINT64_FORMAT
            " bytes",
            method, url, c->timeout_s, sink->n);
      else
        g_set_error (error, CXR_ERROR, CXR_ERROR_NETWORK,
                     "%s %s: %s after %" G_GUINT64_FORMAT " bytes", method, url,
                     c->errbuf[0] ? c->errbuf : lib.easy_strerror (rc), sink->n);
      return FALSE;
    }
  if (*status < 200 || *status > 299)
    {
      g_autofree char *text
          = sink->mem ? snippet (sink->mem->data, sink->mem->len) : file_snippet (sink->file);
      g_set_error (error, CXR_ERROR, CXR_ERROR_NETWORK, "%s %s: HTTP %ld%s%s", method, url, *status,
                   *text ? ": " : "", text);
      return FALSE;
    }
  return TRUE;
}

/* "multipart/related; type=...; boundary=X" -> X (transfer full), or NULL
 * when the type is another or the boundary is missing. */
static char *
multipart_boundary (const char *content_type)
{
  if (content_type == NULL || g_ascii_strncasecmp (content_type, "multipart/related", 17) != 0)
    return NULL;
  g_auto (GStrv) params = g_strsplit (content_type, ";", -1);
  for (char **p = params + 1; *p; p++)
    {
      char *kv = g_strstrip (*p);
      if (g_ascii_strncasecmp (kv, "boundary=", 9) != 0)
        continue;
      char *b = kv + 9;
      gsize n = strlen (b);
      if (n >= 2 && b[0] == '"' && b[n - 1] == '"')
        return g_strndup (b + 1, n - 2);
      return n > 0 && n <= 200 ? g_strdup (b) : NULL;
    }
  return NULL;
}

/**
 * cxr__multipart_first_part:
 * @content_type: (nullable): the answer's Content-Type
 * @name: the request, for messages
 * @off: (out): where the first part's body starts in @data
 * @len: (out): its length
 *
 * The first part of a multipart/related answer, after checking the
 * answer's type and boundary, the part's type (application/dicom when
 * given) and that a boundary closes it: a truncated answer is an error,
 * never a short object.
 */
gboolean
cxr__multipart_first_part (const guint8 *data, gsize n, const char *content_type, const char *name,
                           gsize *off, gsize *len, GError **error)
{
  g_autofree char *boundary = multipart_boundary (content_type);
  if (boundary == NULL)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_NETWORK,
                   "GET %s: Content-Type '%s', not multipart/related with a boundary", name,
                   content_type ? content_type : "not given");
      return FALSE;
    }
  if (data == NULL)
    data = (const guint8 *) "";
  g_autofree char *open = g_strdup_printf ("--%s", boundary);
  g_autofree char *close = g_strdup_printf ("\r\n--%s", boundary);
  const guint8 *start = memmem (data, n, open, strlen (open));
  if (start == NULL)
    {
      g_set_error (
          error, CXR_ERROR, CXR_ERROR_NETWORK,
          "GET %s: truncated or malformed multipart answer: no boundary in its %" G_GSIZE_FORMAT
          " bytes",
          name, n);
      return FALSE;
    }
  const guint8 *end = data + n;
  const guint8 *p = start + strlen (open);
  const guint8 *head_end = memmem (p, (gsize) (end - p), "\r\n\r\n", 4);
  if (head_end == NULL)
    {
      g_set_error (
          error, CXR_ERROR, CXR_ERROR_NETWORK,
          "GET %s: truncated multipart answer: the part's headers do not end (%" G_GSIZE_FORMAT
          " bytes)",
          name, n);
      return FALSE;
    }
  g_autofree char *head = g_ascii_strdown ((const char *) p, head_end - p);
  char *ct = strstr (head, "content-type:");
  if (ct)
    {
      ct += 13;
      while (*ct == ' ' || *ct == '\t')
        ct++;
      if (!g_str_has_prefix (ct, "application/dicom")
          || g_str_has_prefix (ct, "application/dicom+"))
        {
          char *eol = strpbrk (ct, "\r\n;");
          g_set_error (error, CXR_ERROR, CXR_ERROR_NETWORK,
                       "GET %s: the part is of type '%.*s', not application/dicom", name,
                       eol ? (int) (eol - ct) : (int) strlen (ct), ct);
          return FALSE;
        }
    }
  const guint8 *body = head_end + 4;
  const guint8 *stop = memmem (body, (gsize) (end - body), close, strlen (close));
  if (stop == NULL)
    {
      g_set_error (
          error, CXR_ERROR, CXR_ERROR_NETWORK,
          "GET %s: truncated multipart answer: no boundary closes the part (%" G_GSIZE_FORMAT
          " bytes received)",
          name, n);
      return FALSE;
    }
  *off = (gsize) (body - data);
  *len = (gsize) (stop - body);
  return TRUE;
}

static gboolean
write_range (const guint8 *data, gsize n, const char *path, GError **error)
{
  g_autofree char *tmp = g_strconcat (path, ".tmp", NULL);
  if (!g_file_set_contents (tmp, (const char *) data, (gssize) n, error))
    return FALSE;
  if (g_rename (tmp, path) != 0)
    {
      int e = errno;
      g_unlink (tmp);
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot rename into place: %s", path,
                   g_strerror (e));
      return FALSE;
    }
  return TRUE;
}

/**
 * cxr__dicomweb_retrieve_instance:
 * @dest: where the object goes; written only once it has arrived whole
 * @max_bytes: the largest answer read
 *
 * WADO-RS retrieval of one instance. The answer streams to @dest.part;
 * the DICOM object in it is checked (a complete first part of type
 * application/dicom) and renamed to @dest; the .part file is removed
 * whatever happens.
 */
gboolean
cxr__dicomweb_retrieve_instance (CxrDicomweb *c, const char *study, const char *series,
                                 const char *sop, const char *dest, guint64 max_bytes,
                                 GError **error)
{
  g_autofree char *url
      = g_strdup_printf ("%s/studies/%s/series/%s/instances/%s", c->url, study, series, sop);
  g_autofree char *part = g_strconcat (dest, ".part", NULL);
  FILE *f = g_fopen (part, "w+b");
  if (f == NULL)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot be written: %s", part,
                   g_strerror (errno));
      return FALSE;
    }
  Sink sink = { .file = f, .max = max_bytes };
  static const char *const headers[]
      = { "Accept: multipart/related; type=\"application/dicom\"; transfer-syntax=*", NULL };
  long status;
  g_autofree char *ct = NULL;
  gboolean ok = perform (c, "GET", url, headers, NULL, 0, &sink, &status, &ct, error);
  if (fclose (f) != 0 && ok)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: cannot be written: %s", part,
                   g_strerror (errno));
      ok = FALSE;
    }
  if (ok)
    {
      /* an empty file maps to no contents: then "no boundary" */
      g_autoptr (GMappedFile) map = g_mapped_file_new (part, FALSE, error);
      gsize off = 0, len = 0;
      const guint8 *data = map ? (const guint8 *) g_mapped_file_get_contents (map) : NULL;
      gsize n = map ? g_mapped_file_get_length (map) : 0;
      ok = map != NULL && cxr__multipart_first_part (data, n, ct, url, &off, &len, error)
           && write_range (data + off, len, dest, error);
    }
  g_unlink (part);
  return ok;
}

/**
 * cxr__dicom_json_parse:
 * @name: the request, for messages
 * @parser: (out): owns what is returned
 *
 * A QIDO-RS answer: a DICOM JSON array (PS3.18 F.2) whose every element
 * is a dataset (an object).
 *
 * Returns: (transfer none): the array, or %NULL with @error set.
 */
JsonArray *
cxr__dicom_json_parse (const guint8 *data, gsize n, const char *name, JsonParser **parser,
                       GError **error)
{
  *parser = json_parser_new_immutable ();
  GError *err = NULL;
  if (n > G_MAXSSIZE
      || !json_parser_load_from_data (*parser, (const char *) data, (gssize) n, &err))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_NETWORK, "GET %s: not JSON: %s", name,
                   err ? err->message : "too long");
      g_clear_error (&err);
      return NULL;
    }
  JsonNode *root = json_parser_get_root (*parser);
  if (root == NULL || !JSON_NODE_HOLDS_ARRAY (root))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_NETWORK,
                   "GET %s: not a DICOM JSON array of datasets", name);
      return NULL;
    }
  JsonArray *a = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (a); i++)
    if (!JSON_NODE_HOLDS_OBJECT (json_array_get_element (a, i)))
      {
        g_set_error (error, CXR_ERROR, CXR_ERROR_NETWORK,
                     "GET %s: match %u is not a DICOM JSON dataset", name, i);
        return NULL;
      }
  return a;
}

/**
 * cxr__dicomweb_search:
 * @path: the resource searched, e.g. "studies" or "studies/UID/instances"
 * @query: (nullable): its query string, without '?', already encoded
 * @page: matches asked for per request (limit); 0 for no paging
 *
 * QIDO-RS: every match, paging with limit and offset until a page comes
 * back short (or repeats the previous one's first match: a server that
 * ignores offset).
 *
 * Returns: (transfer full) (element-type JsonObject): the matching
 * datasets, or %NULL with @error set.
 */
GPtrArray *
cxr__dicomweb_search (CxrDicomweb *c, const char *path, const char *query, guint page,
                      GError **error)
{
  g_autoptr (GPtrArray) all = g_ptr_array_new_with_free_func ((GDestroyNotify) json_object_unref);
  g_autofree char *first_seen = NULL;
  for (guint offset = 0;; offset += page)
    {
      g_autoptr (GString) url = g_string_new (c->url);
      g_string_append_printf (url, "/%s", path);
      char sep = '?';
      if (query && *query)
        {
          g_string_append_printf (url, "?%s", query);
          sep = '&';
        }
      if (page)
        g_string_append_printf (url, "%climit=%u&offset=%u", sep, page, offset);
      Sink sink = { .mem = g_byte_array_new (), .max = SEARCH_MAX_BYTES };
      static const char *const headers[] = { "Accept: application/dicom+json", NULL };
      long status;
      g_autofree char *ct = NULL;
      gboolean ok = perform (c, "GET", url->str, headers, NULL, 0, &sink, &status, &ct, error);
      g_autoptr (GByteArray) body = sink.mem;
      if (!ok)
        return NULL;
      if (status == 204 || body->len == 0)
        break; /* no match */
      if (ct == NULL
          || (g_ascii_strncasecmp (ct, "application/dicom+json", 22) != 0
              && g_ascii_strncasecmp (ct, "application/json", 16) != 0))
        {
          g_autofree char *text = snippet (body->data, body->len);
          g_set_error (error, CXR_ERROR, CXR_ERROR_NETWORK,
                       "GET %s: Content-Type '%s', not application/dicom+json: %s", url->str,
                       ct ? ct : "not given", text);
          return NULL;
        }
      g_autoptr (JsonParser) parser = NULL;
      JsonArray *a = cxr__dicom_json_parse (body->data, body->len, url->str, &parser, error);
      if (a == NULL)
        return NULL;
      guint n = json_array_get_length (a);
      /* a server that ignores offset sends the first page again */
      g_autofree char *first
          = n ? json_to_string (json_array_get_element (a, 0), FALSE) : g_strdup ("");
      if (offset > 0 && first_seen && g_str_equal (first, first_seen))
        break;
      if (offset == 0)
        first_seen = g_steal_pointer (&first);
      for (guint i = 0; i < n; i++)
        g_ptr_array_add (all, json_object_ref (json_array_get_object_element (a, i)));
      if (page == 0 || n < page)
        break;
    }
  return g_steal_pointer (&all);
}

/**
 * cxr__dicomweb_store:
 * @study: the study the objects belong to
 * @objects: (element-type GBytes): whole DICOM objects (Part 10 files)
 *
 * STOW-RS: one POST of every object, as multipart/related parts of type
 * application/dicom.
 */
gboolean
cxr__dicomweb_store (CxrDicomweb *c, const char *study, GPtrArray *objects, GError **error)
{
  g_autofree char *url = g_strdup_printf ("%s/studies/%s", c->url, study);
  g_autofree char *boundary = g_uuid_string_random ();
  g_autoptr (GByteArray) body = g_byte_array_new ();
  for (guint i = 0; i < objects->len; i++)
    {
      gsize n;
      const guint8 *d = g_bytes_get_data (objects->pdata[i], &n);
      g_autofree char *head = g_strdup_printf (
          "--%s\r\nContent-Type: application/dicom\r\nContent-Length: %" G_GSIZE_FORMAT "\r\n\r\n",
          boundary, n);
      g_byte_array_append (body, (const guint8 *) head, (guint) strlen (head));
      g_byte_array_append (body, d, (guint) n);
      g_byte_array_append (body, (const guint8 *) "\r\n", 2);
    }
  g_autofree char *tail = g_strdup_printf ("--%s--\r\n", boundary);
  g_byte_array_append (body, (const guint8 *) tail, (guint) strlen (tail));
  g_autofree char *ctype = g_strdup_printf (
      "Content-Type: multipart/related; type=\"application/dicom\"; boundary=%s", boundary);
  const char *const headers[] = { ctype, "Accept: application/dicom+json", "Expect:", NULL };
  Sink sink = { .mem = g_byte_array_new (), .max = SEARCH_MAX_BYTES };
  long status;
  g_autofree char *ct = NULL;
  gboolean ok
      = perform (c, "POST", url, headers, body->data, body->len, &sink, &status, &ct, error);
  g_byte_array_unref (sink.mem);
  return ok;
}

/**
 * cxr_dicomweb_auth_read:
 * @file: one line, "user:password" or "Bearer TOKEN" (or the bare token)
 *
 * Returns: (transfer full): the credentials, or %NULL with @error set.
 */
char *
cxr_dicomweb_auth_read (const char *file, GError **error)
{
  g_autofree char *text = NULL;
  gsize n = 0;
  if (!g_file_get_contents (file, &text, &n, error))
    return NULL;
  if (n > 8192 || memchr (text, '\0', n))
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: not a credentials file (one line: user:password or Bearer TOKEN)", file);
      return NULL;
    }
  char *eol = strpbrk (text, "\r\n");
  if (eol)
    *eol = '\0';
  g_strstrip (text);
  if (*text == '\0')
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                   "%s: empty; it holds user:password or Bearer TOKEN", file);
      return NULL;
    }
  return g_steal_pointer (&text);
}

/**
 * cxr__dicom_json_string:
 * @tag: "GGGGEEEE", upper-case hex
 *
 * Returns: (transfer full) (nullable): the attribute's first value as
 * text (a person name's Alphabetic form, a number printed), or %NULL.
 */
char *
cxr__dicom_json_string (JsonObject *dataset, const char *tag)
{
  JsonNode *attr = json_object_get_member (dataset, tag);
  if (attr == NULL || !JSON_NODE_HOLDS_OBJECT (attr))
    return NULL;
  JsonNode *value = json_object_get_member (json_node_get_object (attr), "Value");
  if (value == NULL || !JSON_NODE_HOLDS_ARRAY (value))
    return NULL;
  JsonArray *a = json_node_get_array (value);
  if (json_array_get_length (a) == 0)
    return NULL;
  JsonNode *v = json_array_get_element (a, 0);
  if (JSON_NODE_HOLDS_OBJECT (v))
    {
      JsonObject *pn = json_node_get_object (v);
      return json_object_has_member (pn, "Alphabetic")
                 ? g_strdup (json_object_get_string_member (pn, "Alphabetic"))
                 : NULL;
    }
  if (!JSON_NODE_HOLDS_VALUE (v))
    return NULL;
  switch (json_node_get_value_type (v))
    {
    case G_TYPE_STRING: return g_strdup (json_node_get_string (v));
    case G_TYPE_INT64: return g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (v));
    case G_TYPE_DOUBLE:
      {
        /* 15 digits: what a DS (16 characters) can hold, 0.143 not 0.14299999999999999 */
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        return g_strdup (g_ascii_formatd (buf, sizeof buf, "%.15g", json_node_get_double (v)));
      }
    default: return NULL;
    }
}

/**
 * cxr__dicom_uid_ok:
 *
 * Whether @uid is a UID as PS3.5 9.1 allows (digits and dots, at most 64
 * characters, no empty component): what a server sends is used in URLs
 * and file names only after this check.
 */
gboolean
cxr__dicom_uid_ok (const char *uid)
{
  if (uid == NULL)
    return FALSE;
  gsize n = strlen (uid);
  if (n == 0 || n > 64 || uid[0] == '.' || uid[n - 1] == '.')
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (!(g_ascii_isdigit (uid[i]) || (uid[i] == '.' && uid[i + 1] != '.')))
      return FALSE;
  return TRUE;
}
