/* SPDX-License-Identifier: MIT
 *
 * Reading chest films from DICOM with DCMTK (C++, as is src/pacs/dicom-out.cc),
 * behind the C interface of dicom-private.h. Why DCMTK (docs/ingest.md, "From a
 * PACS export"): its dcmimgle is the display pipeline many viewers are
 * built on (Modality LUT, VOI window or LUT, MONOCHROME1 polarity), and
 * Debian's build decodes the transfer syntaxes chest films use: implicit
 * and explicit little endian, deflated, JPEG baseline, extended and
 * lossless, JPEG-LS and RLE. It has no JPEG 2000 decoder: those films'
 * codestreams are decoded by OpenJPEG (image-j2k.c) and put back as
 * native pixel data for the same pipeline (j2k_to_native).
 *
 * A film as a radiologist sees it: stored values through the Modality LUT
 * (Rescale Slope / Intercept or a LUT), then the VOI (limits->voi: the
 * first window, else the first VOI LUT, else the whole range the stored
 * bits can hold; or that whole range; or the film's own range), then
 * MONOCHROME1 inverted so that bone is bright, scaled to [0, 1]. Pixels
 * equal to the Pixel Padding Value are black and do not set an automatic
 * window. Colour films are reduced to luminance (Rec. 709, as PNG).
 *
 * Untrusted input: the file size is checked before reading, Rows and
 * Columns against the caller's limits before DCMTK allocates a pixel,
 * native pixel data against the size its header asks for (DCMTK itself
 * would pad a short one with black), and a data set that ends early is an
 * error: a film is read whole or not at all. No C++ exception or DCMTK
 * object crosses into C.
 *
 * This file, the pieces only it uses (dicom-deflate.c, dicom-scan.c,
 * image-j2k.c) and src/pacs/dicom-out.cc make the module cxrtrack-dcmtk
 * (dicom-module.c), which cxrtrack opens the first time it meets DICOM
 * (dicom-load.c): DCMTK and the libraries it pulls in are 23 of the 47
 * that every cxrtrack process otherwise loads at start, 7-9 ms each time.
 */
#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <new>

#include <dcmtk/config/osconfig.h>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmimage/diregist.h> /* colour films */
#include <dcmtk/dcmimgle/dcmimage.h>
#include <dcmtk/dcmimgle/dipixel.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

#include <glib/gstdio.h>

extern "C" {
#include "cxr/error.h"
#include "cxr/image.h"
#include "dicom-private.h"
}

/* The codecs given back when the process ends (or the module is
 * closed): DCMTK's own static destructors empty its registry without
 * freeing the entries, which LeakSanitizer then reports. */
static void
deregister (void)
{
  DJLSDecoderRegistration::cleanup ();
  DJDecoderRegistration::cleanup ();
  DcmRLEDecoderRegistration::cleanup ();
}

/* Codecs are registered once for the process; DCMTK's registry is not
 * meant to change while images are decoded. Its log goes quiet: problems
 * come back as errors with the file's name. */
static gpointer
init_once (gpointer unused)
{
  (void) unused;
  OFLog::configure (OFLogger::OFF_LOG_LEVEL);
  DcmRLEDecoderRegistration::registerCodecs ();
  DJDecoderRegistration::registerCodecs ();
  DJLSDecoderRegistration::registerCodecs ();
  atexit (deregister);
  return NULL;
}

static void
init (void)
{
  static GOnce once = G_ONCE_INIT;
  g_once (&once, init_once, NULL);
}

/* --- the header ------------------------------------------------------- */

/* A string attribute, trimmed, as valid UTF-8; NULL when absent or empty.
 * Only the attributes of CxrDicomMeta are ever read. */
static char *
get_string (DcmItem *ds, const DcmTagKey &key)
{
  OFString s;
  if (ds->findAndGetOFStringArray (key, s).bad ())
    return NULL;
  g_autofree char *v = g_utf8_make_valid (s.c_str (), (gssize) s.length ());
  g_strstrip (v);
  if (*v == '\0')
    return NULL;
  return g_steal_pointer (&v);
}

static double
get_double (DcmItem *ds, const DcmTagKey &key, unsigned long pos)
{
  Float64 v;
  if (ds->findAndGetFloat64 (key, v, pos).bad () || !std::isfinite (v))
    return NAN;
  return v;
}

static int
get_int (DcmItem *ds, const DcmTagKey &key, int absent)
{
  Uint16 u;
  if (ds->findAndGetUint16 (key, u).good ())
    return u;
  Sint32 s;
  if (ds->findAndGetSint32 (key, s).good ())
    return s;
  /* IS (Number of Frames) is text */
  g_autofree char *t = get_string (ds, key);
  if (t)
    {
      char *end;
      long v = strtol (t, &end, 10);
      if (*end == '\0' && v >= 0 && v <= G_MAXINT)
        return (int) v;
    }
  return absent;
}

/* DA "YYYYMMDD" (or the old "YYYY.MM.DD") as "YYYY-MM-DD", checked. */
static char *
iso_date (const char *da)
{
  if (da == NULL)
    return NULL;
  char digits[9];
  int n = 0;
  for (const char *p = da; *p && n < 9; p++)
    if (g_ascii_isdigit (*p))
      digits[n++] = *p;
    else if (*p != '.' && *p != '-')
      return NULL;
  if (n != 8)
    return NULL;
  int y = (digits[0] - '0') * 1000 + (digits[1] - '0') * 100 + (digits[2] - '0') * 10
          + (digits[3] - '0');
  int mo = (digits[4] - '0') * 10 + (digits[5] - '0');
  int d = (digits[6] - '0') * 10 + (digits[7] - '0');
  if (!g_date_valid_dmy ((GDateDay) d, (GDateMonth) mo, (GDateYear) y))
    return NULL;
  return g_strdup_printf ("%04d-%02d-%02d", y, mo, d);
}

/* TM "HHMMSS.ffffff" (or "HH:MM:SS", or shorter) as "HH:MM:SS[.ffffff]". */
static char *
iso_time (const char *tm)
{
  if (tm == NULL)
    return NULL;
  int v[3] = { 0, 0, 0 }, n = 0;
  const char *p = tm;
  while (n < 3 && g_ascii_isdigit (p[0]) && g_ascii_isdigit (p[1]))
    {
      v[n++] = (p[0] - '0') * 10 + (p[1] - '0');
      p += 2;
      if (*p == ':')
        p++;
    }
  if (n == 0 || v[0] > 23 || v[1] > 59 || v[2] > 60)
    return NULL;
  if (*p == '.' && g_ascii_isdigit (p[1]))
    {
      char frac[7] = { 0 };
      for (int i = 0; i < 6 && g_ascii_isdigit (p[1 + i]); i++)
        frac[i] = p[1 + i];
      return g_strdup_printf ("%02d:%02d:%02d.%s", v[0], v[1], v[2], frac);
    }
  if (*p != '\0')
    return NULL;
  return g_strdup_printf ("%02d:%02d:%02d", v[0], v[1], v[2]);
}

/* AS "nnnD|W|M|Y" in years. */
static double
age_string (const char *as)
{
  if (as == NULL || strlen (as) != 4)
    return NAN;
  for (int i = 0; i < 3; i++)
    if (!g_ascii_isdigit (as[i]))
      return NAN;
  double n = atoi (as);
  switch (as[3])
    {
    case 'Y': return n;
    case 'M': return n / 12.0;
    case 'W': return n * 7.0 / 365.25;
    case 'D': return n / 365.25;
    default: return NAN;
    }
}

static double
years_between (const char *iso_from, const char *iso_to)
{
  if (iso_from == NULL || iso_to == NULL)
    return NAN;
  GDate a, b;
  g_date_clear (&a, 1);
  g_date_clear (&b, 1);
  g_date_set_parse (&a, iso_from);
  g_date_set_parse (&b, iso_to);
  if (!g_date_valid (&a) || !g_date_valid (&b) || g_date_compare (&a, &b) > 0)
    return NAN;
  return g_date_days_between (&a, &b) / 365.25;
}

/* The film's date and time: the first of acquisition, content, study and
 * series date that is valid, with the time of the same attribute group. */
static void
film_date (DcmItem *ds, CxrDicomMeta *m)
{
  g_autofree char *dt = get_string (ds, DCM_AcquisitionDateTime);
  if (dt && strlen (dt) >= 8)
    {
      char day[9];
      memcpy (day, dt, 8);
      day[8] = '\0';
      m->date = iso_date (day);
      if (m->date)
        {
          m->time = strlen (dt) > 8 ? iso_time (dt + 8) : NULL;
          m->date_source = "acquisition";
          return;
        }
    }
  static const struct {
    DcmTagKey date, time;
    const char *name;
  } groups[] = {
    { DCM_AcquisitionDate, DCM_AcquisitionTime, "acquisition" },
    { DCM_ContentDate, DCM_ContentTime, "content" },
    { DCM_StudyDate, DCM_StudyTime, "study" },
    { DCM_SeriesDate, DCM_SeriesTime, "series" },
  };
  for (const auto &g : groups)
    {
      g_autofree char *da = get_string (ds, g.date);
      char *iso = iso_date (da);
      if (iso == NULL)
        continue;
      m->date = iso;
      g_autofree char *tm = get_string (ds, g.time);
      m->time = iso_time (tm);
      m->date_source = g.name;
      return;
    }
}

static void
spacing (DcmItem *ds, CxrDicomMeta *m)
{
  double r = get_double (ds, DCM_PixelSpacing, 0), c = get_double (ds, DCM_PixelSpacing, 1);
  if (r > 0 && c > 0)
    {
      m->spacing_row_mm = r;
      m->spacing_col_mm = c;
      m->spacing_source = "pixel";
      return;
    }
  r = get_double (ds, DCM_ImagerPixelSpacing, 0);
  c = get_double (ds, DCM_ImagerPixelSpacing, 1);
  if (!(r > 0 && c > 0))
    return;
  /* at the detector: the patient is magnified by source-detector over
   * source-patient distance (PS3.3 C.8.11.7) */
  double mag = get_double (ds, DCM_EstimatedRadiographicMagnificationFactor, 0);
  if (mag >= 1.0 && mag < 3.0)
    {
      m->spacing_row_mm = r / mag;
      m->spacing_col_mm = c / mag;
      m->spacing_source = "imager/magnification";
    }
  else
    {
      m->spacing_row_mm = r;
      m->spacing_col_mm = c;
      m->spacing_source = "imager";
    }
}

static gboolean fail (GError **error, int code, const char *name, const char *fmt, ...)
    G_GNUC_PRINTF (4, 5);

/* The data set's text as UTF-8, as its Specific Character Set (0008,0005)
 * says (DCMTK through iconv), so that two Patient IDs that differ in
 * their bytes never read as one: a film whose text cannot be converted,
 * or whose Patient ID is not ASCII when no character set is given, is
 * refused with the reason rather than read with U+FFFD in its ID. */
static gboolean
text_to_utf8 (DcmDataset *ds, const char *name, GError **error)
{
  OFString cs;
  ds->findAndGetOFStringArray (DCM_SpecificCharacterSet, cs);
  g_autofree char *set = g_strstrip (g_strdup (cs.c_str ()));
  if (*set == '\0' || g_str_equal (set, "ISO_IR 6"))
    {
      const char *id = NULL;
      if (ds->findAndGetString (DCM_PatientID, id).good () && id)
        for (const char *p = id; *p; p++)
          if ((unsigned char) *p >= 0x80)
            return fail (error, CXR_ERROR_INVALID_INPUT, name,
                         "Patient ID holds bytes outside ASCII and no Specific Character Set"
                         " says what they are: not read (two IDs could become one)");
      return TRUE;
    }
  if (g_str_equal (set, "ISO_IR 192"))
    {
      const char *id = NULL;
      if (ds->findAndGetString (DCM_PatientID, id).good () && id && !g_utf8_validate (id, -1, NULL))
        return fail (error, CXR_ERROR_INVALID_INPUT, name,
                     "Patient ID is not valid UTF-8 (Specific Character Set ISO_IR 192): not read");
      return TRUE;
    }
  OFCondition c = ds->convertToUTF8 ();
  if (c.bad ())
    return fail (error, CXR_ERROR_INVALID_INPUT, name,
                 "its text cannot be converted from Specific Character Set '%s' (%s): not read",
                 set, c.text ());
  return TRUE;
}

static void
read_meta (DcmFileFormat &ff, CxrDicomMeta *m)
{
  DcmDataset *ds = ff.getDataset ();
  DcmMetaInfo *mi = ff.getMetaInfo ();
  memset (m, 0, sizeof *m);
  m->age_years = m->spacing_row_mm = m->spacing_col_mm = NAN;
  m->sop_instance_uid = get_string (ds, DCM_SOPInstanceUID);
  if (m->sop_instance_uid == NULL && mi)
    m->sop_instance_uid = get_string (mi, DCM_MediaStorageSOPInstanceUID);
  m->sop_class_uid = get_string (ds, DCM_SOPClassUID);
  if (m->sop_class_uid == NULL && mi)
    m->sop_class_uid = get_string (mi, DCM_MediaStorageSOPClassUID);
  m->study_instance_uid = get_string (ds, DCM_StudyInstanceUID);
  m->series_instance_uid = get_string (ds, DCM_SeriesInstanceUID);
  m->patient_id = get_string (ds, DCM_PatientID);
  film_date (ds, m);
  g_autofree char *study_da = get_string (ds, DCM_StudyDate);
  m->study_date = iso_date (study_da);
  m->view_position = get_string (ds, DCM_ViewPosition);
  m->laterality = get_string (ds, DCM_ImageLaterality);
  g_autofree char *sex = get_string (ds, DCM_PatientSex);
  if (sex && (g_str_equal (sex, "M") || g_str_equal (sex, "F") || g_str_equal (sex, "O")))
    m->sex = g_steal_pointer (&sex);
  g_autofree char *as = get_string (ds, DCM_PatientAge);
  m->age_years = age_string (as);
  if (std::isnan (m->age_years))
    {
      g_autofree char *bd = get_string (ds, DCM_PatientBirthDate);
      g_autofree char *birth = iso_date (bd);
      m->age_years = years_between (birth, m->study_date ? m->study_date : m->date);
    }
  m->body_part = get_string (ds, DCM_BodyPartExamined);
  m->modality = get_string (ds, DCM_Modality);
  m->manufacturer = get_string (ds, DCM_Manufacturer);
  m->photometric = get_string (ds, DCM_PhotometricInterpretation);
  DcmXfer xfer (ds->getOriginalXfer ());
  m->transfer_syntax = g_strdup (xfer.getXferID ());
  spacing (ds, m);
  m->rows = get_int (ds, DCM_Rows, -1);
  m->columns = get_int (ds, DCM_Columns, -1);
  m->bits_stored = get_int (ds, DCM_BitsStored, -1);
  m->frames = get_int (ds, DCM_NumberOfFrames, 1);
  m->has_pixels = ds->tagExists (DCM_PixelData);
}

/* A DICOM file in memory that DCMTK can come back to. DCMTK puts off
 * loading a value longer than the read's limit (4 KiB) when its stream can
 * make a factory for a later one, and then skips it, so a length beyond
 * the end of the file is an error; a stream without a factory (DCMTK's own
 * buffer stream) makes it allocate whatever an element declares and read
 * into it: 19 KB files made it ask for 3.5 GB (found by fuzzing). With a
 * filter in between (a deflated data set) there is no coming back:
 * dicom-deflate.c inflates those first. */
class MemoryFactory : public DcmInputStreamFactory {
public:
  MemoryFactory (const guint8 *data, gsize len, offile_off_t at)
      : data_ (data), len_ (len), at_ (at)
  {
  }
  DcmInputStream *create () const override
  {
    DcmInputBufferStream *s = new DcmInputBufferStream ();
    s->setBuffer (data_, (offile_off_t) len_);
    s->setEos ();
    s->skip (at_);
    return s;
  }
  DcmInputStreamFactory *clone () const override { return new MemoryFactory (*this); }
  DcmInputStreamFactoryType ident () const override
  {
    return DFT_DcmInputFileStreamFactory; /* the kind DCMTK treats as plain */
  }

private:
  const guint8 *data_;
  gsize len_;
  offile_off_t at_;
};

class MemoryStream : public DcmInputBufferStream {
public:
  MemoryStream (const guint8 *data, gsize len) : data_ (data), len_ (len)
  {
    setBuffer (data, (offile_off_t) len);
    setEos ();
    plain_ = currentProducer ();
  }
  DcmInputStreamFactory *newFactory () const override
  {
    /* none through a filter: its positions are not the buffer's */
    return currentProducer () == plain_ ? new MemoryFactory (data_, len_, tell ()) : NULL;
  }

private:
  const guint8 *data_;
  gsize len_;
  const DcmProducer *plain_;
};

/* @ff read from @in up to @until (DCM_UndefinedTagKey: all of it), values
 * over @max_read put off. */
static OFCondition
read_from (DcmFileFormat &ff, DcmInputStream &in, Uint32 max_read,
           const DcmTagKey &until = DCM_UndefinedTagKey)
{
  ff.transferInit ();
  OFCondition c = ff.readUntilTag (in, EXS_Unknown, EGL_noChange, max_read, until);
  ff.transferEnd ();
  return c;
}

CXR_DCMTK_EXPORT gboolean
cxr__dicom_read_header (const char *path, guint64 max_file_bytes, CxrDicomMeta *meta,
                        GError **error)
{
  init ();
  memset (meta, 0, sizeof *meta);
  GStatBuf st;
  if (g_stat (path, &st) != 0)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s: %s", path, g_strerror (errno));
      return FALSE;
    }
  if ((guint64) st.st_size > max_file_bytes)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_LIMIT, "%s: %lld bytes, over the limit of %llu",
                   path, (long long) st.st_size, (unsigned long long) max_file_bytes);
      return FALSE;
    }
  /* the file mapped, not read: its structure is walked before DCMTK is
   * given it (cxr__dicom_check_structure), and values are not touched */
  g_autoptr (GError) map_error = NULL;
  g_autoptr (GMappedFile) mapped = g_mapped_file_new (path, FALSE, &map_error);
  if (mapped == NULL)
    {
      g_set_error (error, CXR_ERROR, CXR_ERROR_IO, "%s", map_error->message);
      return FALSE;
    }
  const guint8 *whole = (const guint8 *) g_mapped_file_get_contents (mapped);
  gsize whole_len = g_mapped_file_get_length (mapped);
  /* a deflated data set is read as decode reads it (MemoryStream), whole:
   * through DCMTK's filter no value is put off */
  g_autofree guint8 *plain = NULL;
  gsize plain_len = 0;
  if (whole_len > 0
      && !cxr__dicom_inflate (path, whole, whole_len, max_file_bytes, &plain, &plain_len, error))
    return FALSE;
  if (whole_len > 0
      && !cxr__dicom_check_structure (path, plain ? plain : whole, plain ? plain_len : whole_len,
                                      error))
    return FALSE;
  try
    {
      DcmFileFormat ff;
      /* values over 4 KiB (the pixel data) stay on disk, or in memory
       * unread */
      OFCondition c;
      if (plain)
        {
          MemoryStream in (plain, plain_len);
          c = read_from (ff, in, 4096);
        }
      else
        c = ff.loadFile (path, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect);
      if (c.bad ())
        {
          /* a file cut short in its pixel data still has a header: the
           * film is stored, and refused as truncated when it is decoded */
          DcmFileFormat head;
          if (plain)
            {
              MemoryStream in (plain, plain_len);
              c = read_from (head, in, 4096, DCM_PixelData);
            }
          else
            c = head.loadFileUntilTag (path, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect,
                                       DCM_PixelData);
          if (c.good ())
            {
              if (!text_to_utf8 (head.getDataset (), path, error))
                return FALSE;
              read_meta (head, meta);
              meta->has_pixels = TRUE;
            }
          else
            {
              g_set_error (error, CXR_ERROR, CXR_ERROR_INVALID_INPUT,
                           "%s: not a readable DICOM file (%s)", path, c.text ());
              return FALSE;
            }
        }
      else if (!text_to_utf8 (ff.getDataset (), path, error))
        return FALSE;
      else
        read_meta (ff, meta);
      if (plain)
        {
          /* as the file has it, not as it was read */
          g_free (meta->transfer_syntax);
          meta->transfer_syntax = g_strdup (UID_DeflatedExplicitVRLittleEndianTransferSyntax);
        }
  } catch (const std::bad_alloc &)
    {
      cxr__dicom_meta_clear (meta);
      g_set_error (error, CXR_ERROR, CXR_ERROR_FAILED, "%s: out of memory reading the header",
                   path);
      return FALSE;
  }
  return TRUE;
}

gboolean
cxr__dicom_vr_extended (guint8 c0, guint8 c1)
{
  const char s[3] = { (char) c0, (char) c1, 0 };
  return DcmVR (s).usesExtendedLengthEncoding ();
}

/* --- pixels ----------------------------------------------------------- */

static gboolean fail (GError **error, int code, const char *name, const char *fmt, ...)
    G_GNUC_PRINTF (4, 5);

static gboolean
fail (GError **error, int code, const char *name, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *why = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, CXR_ERROR, code, "%s: %s", name, why);
  return FALSE;
}

/* The modality values DCMTK holds, one per pixel, as doubles. */
static double *
inter_values (const DicomImage &img, gsize n)
{
  const DiPixel *px = img.getInterData ();
  if (px == NULL || px->getData () == NULL || px->getCount () < n)
    return NULL;
  double *v = (double *) g_try_malloc (n * sizeof *v);
  if (v == NULL)
    return NULL;
  const void *d = px->getData ();
  for (gsize i = 0; i < n; i++)
    switch (px->getRepresentation ())
      {
      case EPR_Uint8: v[i] = ((const Uint8 *) d)[i]; break;
      case EPR_Sint8: v[i] = ((const Sint8 *) d)[i]; break;
      case EPR_Uint16: v[i] = ((const Uint16 *) d)[i]; break;
      case EPR_Sint16: v[i] = ((const Sint16 *) d)[i]; break;
      case EPR_Uint32: v[i] = ((const Uint32 *) d)[i]; break;
      case EPR_Sint32: v[i] = ((const Sint32 *) d)[i]; break;
      default: g_free (v); return NULL;
      }
  return v;
}

/* A linear window that maps [lo, hi] onto the whole output (PS3.3
 * C.11.2.1.2.1: x <= c - 0.5 - (w - 1) / 2 is black). */
static void
window_for_range (DicomImage &img, double lo, double hi)
{
  if (!(hi > lo))
    hi = lo + 1;
  img.setWindow ((lo + hi) / 2 + 0.5, hi - lo + 1);
}

/* Native (uncompressed) pixel data must hold what the header asks for. */
static gboolean
check_native_length (DcmDataset *ds, const char *name, GError **error)
{
  DcmXfer xfer (ds->getOriginalXfer ());
  if (xfer.isEncapsulated ())
    return TRUE;
  DcmElement *pd = NULL;
  if (ds->findAndGetElement (DCM_PixelData, pd).bad () || pd == NULL)
    return fail (error, CXR_ERROR_INVALID_INPUT, name, "no Pixel Data (7FE0,0010)");
  Uint16 rows = 0, cols = 0, alloc = 0, spp = 1;
  ds->findAndGetUint16 (DCM_Rows, rows);
  ds->findAndGetUint16 (DCM_Columns, cols);
  ds->findAndGetUint16 (DCM_BitsAllocated, alloc);
  ds->findAndGetUint16 (DCM_SamplesPerPixel, spp);
  guint64 need = ((guint64) rows * cols * spp * alloc + 7) / 8;
  guint64 have = pd->getLength ();
  if (have < need)
    return fail (error, CXR_ERROR_INVALID_INPUT, name,
                 "truncated: Pixel Data holds %llu bytes, the header asks for %llu",
                 (unsigned long long) have, (unsigned long long) need);
  return TRUE;
}

static gboolean
is_j2k (const char *ts)
{
  return ts
         && (g_str_equal (ts, UID_JPEG2000LosslessOnlyTransferSyntax)
             || g_str_equal (ts, UID_JPEG2000TransferSyntax));
}

/* A JPEG 2000 film's pixel data decoded (image-j2k.c) and put back as
 * native pixel data, the header made to say what it holds, so that DCMTK
 * applies its LUTs as to any native film. One frame: the fragments after
 * the offset table are one codestream. */
static gboolean
j2k_to_native (DcmDataset *ds, const CxrDicomMeta *m, const char *name, GError **error)
{
  DcmElement *el = NULL;
  if (ds->findAndGetElement (DCM_PixelData, el).bad () || el == NULL
      || el->ident () != EVR_PixelData)
    return fail (error, CXR_ERROR_INVALID_INPUT, name, "no Pixel Data (7FE0,0010)");
  DcmPixelSequence *seq = NULL;
  if (OFstatic_cast (DcmPixelData *, el)
          ->getEncapsulatedRepresentation (ds->getOriginalXfer (), NULL, seq)
          .bad ()
      || seq == NULL)
    return fail (error, CXR_ERROR_INVALID_INPUT, name,
                 "JPEG 2000: the Pixel Data is not encapsulated");
  g_autoptr (GByteArray) cs = g_byte_array_new ();
  for (unsigned long i = 1; i < seq->card (); i++)
    {
      DcmPixelItem *it = NULL;
      Uint8 *frag = NULL;
      if (seq->getItem (it, i).bad () || it == NULL || it->getUint8Array (frag).bad ())
        return fail (error, CXR_ERROR_INVALID_INPUT, name,
                     "JPEG 2000: fragment %lu of the Pixel Data cannot be read", i);
      if (frag)
        g_byte_array_append (cs, frag, it->getLength ());
    }
  g_autofree gint32 *v = NULL;
  int prec = 0;
  gboolean sgnd = FALSE;
  if (!cxr__j2k_decode (name, cs->data, cs->len, m->columns, m->rows, &v, &prec, &sgnd, error))
    return FALSE;
  gsize n = (gsize) m->rows * m->columns;
  OFCondition c;
  if (prec <= 8)
    {
      g_autofree Uint8 *b = g_new (Uint8, n);
      for (gsize i = 0; i < n; i++)
        b[i] = (Uint8) v[i]; /* two's complement where signed */
      c = ds->putAndInsertUint8Array (DCM_PixelData, b, (unsigned long) n);
    }
  else
    {
      g_autofree Uint16 *b = g_new (Uint16, n);
      for (gsize i = 0; i < n; i++)
        b[i] = (Uint16) v[i];
      c = ds->putAndInsertUint16Array (DCM_PixelData, b, (unsigned long) n);
    }
  if (c.good ())
    c = ds->putAndInsertUint16 (DCM_BitsAllocated, prec <= 8 ? 8 : 16);
  if (c.good ())
    c = ds->putAndInsertUint16 (DCM_BitsStored, (Uint16) prec);
  if (c.good ())
    c = ds->putAndInsertUint16 (DCM_HighBit, (Uint16) (prec - 1));
  if (c.good ())
    c = ds->putAndInsertUint16 (DCM_PixelRepresentation, sgnd ? 1 : 0);
  if (c.good ())
    c = ds->putAndInsertUint16 (DCM_SamplesPerPixel, 1);
  if (c.bad ())
    return fail (error, CXR_ERROR_FAILED, name, "JPEG 2000: storing the decoded pixels: %s",
                 c.text ());
  return TRUE;
}

/* After a failed read: an element DCMTK read whose declared length is
 * more than the file holds, or NULL. */
static DcmObject *
oversized (DcmDataset *ds, gsize len)
{
  DcmStack st;
  while (ds->nextObject (st, OFTrue).good ())
    {
      Uint32 n = st.top ()->getLengthField ();
      if (n != DCM_UndefinedLength && n > len)
        return st.top ();
    }
  return NULL;
}

static gboolean
decode (const char *name, const guint8 *data, gsize len, const CxrImageLimits *lim,
        CxrImageInfo *info, CxrImage **out, GError **error)
{
  g_autofree guint8 *plain = NULL;
  gsize plain_len = 0;
  if (!cxr__dicom_inflate (name, data, len, lim->max_file_bytes, &plain, &plain_len, error))
    return FALSE;
  gsize file_len = len;
  if (plain)
    {
      data = plain;
      len = plain_len;
    }
  if (!cxr__dicom_check_structure (name, data, len, error))
    return FALSE;
  DcmFileFormat ff;
  MemoryStream in (data, len);
  OFCondition c = read_from (ff, in, DCM_MaxReadLength);
  if (c.bad ())
    {
      DcmObject *e = oversized (ff.getDataset (), len);
      if (e)
        return fail (error, CXR_ERROR_INVALID_INPUT, name,
                     "truncated: the file ends inside the data set (element (%04X,%04X) "
                     "declares %lu bytes, the file has %zu; %s)",
                     e->getGTag (), e->getETag (), (unsigned long) e->getLengthField (), len,
                     c.text ());
    }
  if (c.bad () && in.eos ())
    return fail (error, CXR_ERROR_INVALID_INPUT, name,
                 "truncated: the file ends inside the data set (%s)", c.text ());
  if (c.bad ())
    return fail (error, CXR_ERROR_INVALID_INPUT, name, "not a readable DICOM object (%s)",
                 c.text ());

  CxrDicomMeta m;
  /* the pixels do not depend on the text: converted where it can be (the
   * film's identity was settled, strictly, when its header was read) */
  text_to_utf8 (ff.getDataset (), name, NULL);
  read_meta (ff, &m);
  DcmDataset *ds = ff.getDataset ();
  CxrImageInfo local;
  memset (&local, 0, sizeof local);
  local.width = m.columns > 0 ? (guint32) m.columns : 0;
  local.height = m.rows > 0 ? (guint32) m.rows : 0;
  local.bit_depth = m.bits_stored;
  local.color_type = "gray";
  if (m.photometric
      && (g_str_has_prefix (m.photometric, "RGB") || g_str_has_prefix (m.photometric, "YBR")
          || g_str_equal (m.photometric, "PALETTE COLOR")))
    local.color_type = "rgb";
  if (info)
    *info = local;

  gboolean ok = FALSE;
  if (!m.has_pixels)
    ok = fail (error, CXR_ERROR_INVALID_INPUT, name, "no Pixel Data: not an image (SOP Class %s)",
               m.sop_class_uid ? m.sop_class_uid : "not given");
  else if (m.rows <= 0 || m.columns <= 0 || m.bits_stored <= 0 || m.bits_stored > 16)
    ok = fail (error, CXR_ERROR_INVALID_INPUT, name,
               "Rows %d, Columns %d, Bits Stored %d: not a film cxrtrack reads (1-16 bits)", m.rows,
               m.columns, m.bits_stored);
  else if ((guint32) m.columns > lim->max_width || (guint32) m.rows > lim->max_height)
    ok = fail (error, CXR_ERROR_LIMIT, name, "%dx%d pixels exceeds the limit %ux%u", m.columns,
               m.rows, lim->max_width, lim->max_height);
  else if ((guint64) m.columns * (guint64) m.rows > CXR_DICOM_MAX_PIXELS)
    ok = fail (error, CXR_ERROR_LIMIT, name,
               "%dx%d pixels: over the %u pixels a film may have (a chest detector's are under"
               " 19 million)",
               m.columns, m.rows, CXR_DICOM_MAX_PIXELS);
  else if ((guint64) m.columns * (guint64) m.rows * (m.bits_stored > 8 ? 2u : 1u)
               * (g_str_equal (local.color_type, "rgb") ? 3u : 1u)
           > (guint64) CXR_DICOM_MAX_RATIO * file_len + ((guint64) 16 << 20))
    ok = fail (error, CXR_ERROR_LIMIT, name,
               "%dx%d pixels of %d bits in a file of %zu bytes: more than %d times its size to"
               " decode, not decoded",
               m.columns, m.rows, m.bits_stored, file_len, CXR_DICOM_MAX_RATIO);
  else if (m.frames != 1)
    ok = fail (error, CXR_ERROR_INVALID_INPUT, name,
               "a multi-frame object (%d frames): cxrtrack reads single films", m.frames);
  else if (m.transfer_syntax && g_str_has_prefix (m.transfer_syntax, "1.2.840.10008.1.2.4.9")
           && !is_j2k (m.transfer_syntax))
    ok = fail (error, CXR_ERROR_INVALID_INPUT, name,
               "JPEG 2000 Part 2 or JPIP (%s): cxrtrack reads JPEG 2000 Part 1 (.90, .91)",
               m.transfer_syntax);
  else if (is_j2k (m.transfer_syntax) && !j2k_to_native (ds, &m, name, error))
    ok = FALSE;
  else if (check_native_length (ds, name, error))
    ok = TRUE;
  if (!ok || out == NULL)
    {
      cxr__dicom_meta_clear (&m);
      return ok;
    }

  /* a JPEG 2000 film's pixel data is native now (j2k_to_native) */
  E_TransferSyntax xfer
      = is_j2k (m.transfer_syntax) ? EXS_LittleEndianExplicit : ds->getOriginalXfer ();
  DicomImage *img = new DicomImage (&ff, xfer, CIF_DecompressCompletePixelData, 0, 1);
  if (img->getStatus () == EIS_Normal && !img->isMonochrome ())
    {
      DicomImage *mono = img->createMonochromeImage (0.2126, 0.7152, 0.0722);
      delete img;
      img = mono;
    }
  if (img == NULL || img->getStatus () != EIS_Normal)
    {
      ok = fail (error, CXR_ERROR_INVALID_INPUT, name, "DCMTK cannot decode it (%s, %s)",
                 img ? DicomImage::getString (img->getStatus ()) : "no image",
                 m.transfer_syntax ? m.transfer_syntax : "transfer syntax not given");
      delete img;
      cxr__dicom_meta_clear (&m);
      return ok;
    }

  int w = m.columns, h = m.rows;
  gsize n = (gsize) w * h;
  /* Pixel Padding Value is a stored value: through the Modality LUT */
  double pad = NAN;
  {
    Uint16 u;
    Sint16 s;
    double raw = NAN;
    Uint16 repr = 0;
    ds->findAndGetUint16 (DCM_PixelRepresentation, repr);
    if (repr == 1 && ds->findAndGetSint16 (DCM_PixelPaddingValue, s).good ())
      raw = s;
    else if (ds->findAndGetUint16 (DCM_PixelPaddingValue, u).good ())
      raw = u;
    double slope = get_double (ds, DCM_RescaleSlope, 0),
           icpt = get_double (ds, DCM_RescaleIntercept, 0);
    if (!std::isnan (raw))
      pad = std::isnan (slope) ? raw : raw * slope + (std::isnan (icpt) ? 0 : icpt);
  }
  /* the modality values (8 bytes a pixel) only where padding or the
   * automatic window needs them */
  g_autofree double *v
      = (!std::isnan (pad) || lim->voi == CXR_VOI_AUTO) ? inter_values (*img, n) : NULL;

  CxrVoi voi = lim->voi;
  if (voi == CXR_VOI_FIRST)
    {
      if (img->getWindowCount () > 0)
        img->setWindow (0);
      else if (img->getVoiLutCount () > 0)
        img->setVoiLut (0);
      else
        voi = CXR_VOI_NONE;
    }
  if (voi == CXR_VOI_NONE)
    {
      double lo, hi;
      if (img->getMinMaxValues (lo, hi, 1))
        window_for_range (*img, lo, hi);
    }
  else if (voi == CXR_VOI_AUTO)
    {
      double lo = INFINITY, hi = -INFINITY;
      for (gsize i = 0; v && i < n; i++)
        if (!(std::fabs (v[i] - pad) < 0.5))
          {
            lo = MIN (lo, v[i]);
            hi = MAX (hi, v[i]);
          }
      if (lo <= hi)
        window_for_range (*img, lo, hi);
    }

  /* 8-bit films as 8-bit output, scaled as PNG and JPEG are: an 8-bit
   * film reads back bit for bit as the same film in PNG */
  int bits = m.bits_stored <= 8 ? 8 : 16;
  const void *o = img->getOutputData (bits, 0, 0);
  if (o == NULL)
    ok = fail (error, CXR_ERROR_INVALID_INPUT, name, "DCMTK gave no output (%s)",
               DicomImage::getString (img->getStatus ()));
  else
    {
      CxrImage *im = cxr_image_new (w, h);
      for (gsize i = 0; i < n; i++)
        if (v && std::fabs (v[i] - pad) < 0.5)
          im->data[i] = 0.0f;
        else if (bits == 8)
          im->data[i] = ((const Uint8 *) o)[i] * (1.0f / 255.0f);
        else
          im->data[i] = ((const Uint16 *) o)[i] * (1.0f / 65535.0f);
      *out = im;
    }
  delete img;
  cxr__dicom_meta_clear (&m);
  return ok;
}

CXR_DCMTK_EXPORT gboolean
cxr__dicom_decode (const char *name, const guint8 *data, gsize len, const CxrImageLimits *lim,
                   CxrImageInfo *info, CxrImage **out, GError **error)
{
  init ();
  if (out)
    *out = NULL;
  try
    {
      return decode (name, data, len, lim, info, out, error);
  } catch (const std::bad_alloc &)
    {
      if (out && *out)
        g_clear_pointer (out, cxr_image_free);
      return fail (error, CXR_ERROR_FAILED, name, "out of memory decoding the film");
  }
}
