/* SPDX-License-Identifier: MIT
 *
 * Chain checks of a patient's registrations (register-chain.c): which
 * extra registration a new film needs, and whether the registrations of
 * neighbouring films compose.
 */
#pragma once

#include <glib.h>

#include "cxr/register.h"
#include "store-private.h"

G_BEGIN_DECLS

/* A registration made by this run. */
typedef struct {
  CxrPairRow row;
  CxrRegistration reg;
  char *error;                /* could not register at all (reg is failed) */
  double transitivity_px;     /* baseline row's chain; NAN if not checked */
  double chain_prev_px;       /* previous row's chain; NAN if not checked */
  double norm;                /* px of a 1024-px film per px of MOVING */
  gboolean has_skip;          /* skip: the film before the previous one -> moving, */
  CxrRegistration skip;       /* made for the consecutive chain only */
  gboolean upside_down;       /* MOVING lines up with FIXED turned half a turn */
  gboolean fixed_upside_down; /* ... and FIXED is the film stored that way */
} CxrSeriesPair;

/* A registration stored by an earlier run (row.stored). */
typedef struct {
  CxrPairRow row;
} CxrSeriesStored;

void cxr__series_pair_clear (gpointer pair);
void cxr__series_stored_clear (gpointer stored);

const CxrPairRow *cxr__chain_skip_needed (GArray *pairs, GArray *stored, const CxrSeriesPair *p);
double cxr__chain_fixed_aspect (const CxrPairRow *row);
void cxr__chain_check (GArray *pairs, GArray *stored);

G_END_DECLS
