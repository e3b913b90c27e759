/* SPDX-License-Identifier: MIT
 *
 * DICOM through DCMTK (image-dicom.cc, C++): the C interface
 * that image.c (pixels) and ingest-dicom.c (headers) call. Nothing here
 * holds a patient's name or another direct identifier: the header reader
 * copies only the attributes listed in CxrDicomMeta.
 *
 * The DCMTK side lives in a module, cxrtrack-dcmtk, opened on first use
 * (dicom-load.c). Its entry points (CXR_DCMTK_EXPORT) keep the names
 * below; in libcxr the same names are the loader's forwarders, so the
 * callers do not know which side they are on.
 */
#pragma once

#include <glib.h>

#include "cxr/image.h"

G_BEGIN_DECLS

/* The module's entry points: the only symbols it exports. */
#define CXR_DCMTK_EXPORT __attribute__ ((visibility ("default")))

/* What the module takes from libcxr when it is opened (cxr_dcmtk_init):
 * the image and error functions, so that a film it makes is the host's
 * own and its errors are CXR_ERROR. */
#define CXR_DCMTK_ABI 1
typedef struct {
  int abi; /* CXR_DCMTK_ABI */
  CxrImage *(*image_new) (int width, int height);
  void (*image_free) (CxrImage *image);
  GQuark (*error_quark) (void);
} CxrDcmtkHost;

typedef gboolean (*CxrDcmtkInit) (const CxrDcmtkHost *host);

/* The module's entry point @name, the module opened on first use;
 * %NULL with @error set ("FILE: DICOM needs the module cxrtrack-dcmtk",
 * with where it was looked for; @file may be NULL) when it cannot be.
 * Thread-safe. */
gpointer cxr__dcmtk_symbol (const char *file, const char *name, GError **error);

/* What a DICOM object's header says, as cxrtrack stores it. Strings are
 * valid UTF-8 or NULL; numbers NAN (or -1 for counts) when absent. */
typedef struct {
  char *sop_instance_uid;     /* (0008,0018): a film's identity */
  char *sop_class_uid;        /* (0008,0016) */
  char *study_instance_uid;   /* (0020,000D) */
  char *series_instance_uid;  /* (0020,000E) */
  char *patient_id;           /* (0010,0020) */
  char *date;                 /* ISO 8601 date of the film (see date_source) */
  char *time;                 /* HH:MM:SS[.ffffff] on that date, or NULL */
  const char *date_source;    /* "acquisition", "content", "study", "series" or NULL */
  char *study_date;           /* (0008,0020) as ISO 8601, or NULL */
  char *view_position;        /* (0018,5101) */
  char *laterality;           /* (0020,0062) Image Laterality */
  char *sex;                  /* (0010,0040): "M", "F", "O" or NULL */
  double age_years;           /* (0010,1010), else birth date to study date */
  char *body_part;            /* (0018,0015) */
  char *modality;             /* (0008,0060): CR, DX, ... */
  char *manufacturer;         /* (0008,0070) */
  char *photometric;          /* (0028,0004) */
  char *transfer_syntax;      /* the UID the object is encoded in */
  double spacing_row_mm;      /* between rows, in the patient */
  double spacing_col_mm;      /* between columns */
  const char *spacing_source; /* "pixel", "imager/magnification", "imager" or NULL */
  int rows, columns;          /* (0028,0010), (0028,0011); -1 absent */
  int bits_stored;            /* -1 absent */
  int frames;                 /* (0028,0008), 1 when absent */
  gboolean has_pixels;        /* (7FE0,0010) present */
} CxrDicomMeta;

void cxr__dicom_meta_clear (CxrDicomMeta *m);

/* What DCMTK is given at most (dicom-scan.c): sequences nested this deep,
 * this many elements in a data set; and a film of at most this many
 * pixels, decoded to at most CXR_DICOM_MAX_RATIO times its file's size
 * (plus 16 MiB), so that a small file cannot take gigabytes. */
#define CXR_DICOM_MAX_DEPTH    32
#define CXR_DICOM_MAX_ELEMENTS 100000
#define CXR_DICOM_MAX_PIXELS   (25u * 1000 * 1000)
#define CXR_DICOM_MAX_RATIO    200

gboolean cxr__dicom_check_structure (const char *name, const guint8 *data, gsize len,
                                     GError **error);

/* The file's first bytes: "DICM" after a 128-byte preamble, or a bare
 * little-endian data set starting with group 0002 or 0008. */
gboolean cxr__is_dicom (const guint8 *data, gsize len);

/* Reads the header of @path (element values over 4 KiB, the pixel data
 * among them, are not read). */
gboolean cxr__dicom_read_header (const char *path, guint64 max_file_bytes, CxrDicomMeta *meta,
                                 GError **error);

/* A JPEG 2000 codestream (or JP2 file) of one component, @width x
 * @height, decoded with OpenJPEG (image-j2k.c). */
gboolean cxr__j2k_decode (const char *name, const guint8 *data, gsize len, int width, int height,
                          gint32 **out, int *precision, gboolean *is_signed, GError **error);

/* Whether DCMTK reads a 32-bit length after this VR in explicit VR. */
gboolean cxr__dicom_vr_extended (guint8 c0, guint8 c1);

/* A deflated data set inflated, the file meta group saying Explicit VR
 * Little Endian (dicom-deflate.c); *out NULL when the file is not
 * deflated. */
gboolean cxr__dicom_inflate (const char *name, const guint8 *data, gsize len, guint64 max_bytes,
                             guint8 **out, gsize *out_len, GError **error);

/* Decodes one film from a DICOM object in memory, as a radiologist sees
 * it (docs/ingest.md, "From a PACS export"): Modality LUT, then the VOI chosen by
 * limits->voi, MONOCHROME1 inverted, Pixel Padding Value black. */
gboolean cxr__dicom_decode (const char *name, const guint8 *data, gsize len,
                            const CxrImageLimits *limits, CxrImageInfo *info, CxrImage **out,
                            GError **error);

G_END_DECLS
