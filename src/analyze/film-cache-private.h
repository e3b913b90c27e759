/* SPDX-License-Identifier: MIT
 *
 * The films a worker of the pipeline needs at once, decoded and prepared
 * for registration once each (film-cache.c).
 */
#pragma once

#include <glib.h>

#include "cxr/image.h"
#include "cxr/lungs.h"
#include "cxr/register.h"

G_BEGIN_DECLS

#define CXR_FILM_CACHE_SLOTS 4

typedef struct {
  gint64 id[CXR_FILM_CACHE_SLOTS];
  CxrImage *im[CXR_FILM_CACHE_SLOTS];
  CxrRegisterFilm *prep[CXR_FILM_CACHE_SLOTS]; /* made on first use */
  double aspect[CXR_FILM_CACHE_SLOTS];         /* the pixel aspect prep was made with */
  CxrLungFields *lungs[CXR_FILM_CACHE_SLOTS];  /* made on first use, with a lung model */
  guint8 *cavity[CXR_FILM_CACHE_SLOTS];        /* the whole lung, from lungs: on first use */
  guint64 used[CXR_FILM_CACHE_SLOTS];          /* when last returned */
  guint64 clock;
  const CxrImageLimits *limits;
  const CxrRegisterOptions *reg;
  const CxrLungModel *lung_model; /* or NULL: no lung fields */
} CxrFilmCache;

void cxr__film_cache_init (CxrFilmCache *c, const CxrImageLimits *limits,
                           const CxrRegisterOptions *reg, const CxrLungModel *lung_model);
void cxr__film_cache_clear (CxrFilmCache *c);
const CxrImage *cxr__film_cache_image (CxrFilmCache *c, gint64 id, const char *path,
                                       const char *sha256, GError **error);
const CxrLungFields *cxr__film_cache_lungs (CxrFilmCache *c, gint64 id, const char *path,
                                            const char *sha256, GError **error);
const guint8 *cxr__film_cache_cavity (CxrFilmCache *c, gint64 id, const char *path,
                                      const char *sha256);
const CxrRegisterFilm *cxr__film_cache_prepared (CxrFilmCache *c, gint64 id, const char *path,
                                                 const char *sha256, double aspect, GError **error);

G_END_DECLS
