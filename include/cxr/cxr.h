/* SPDX-License-Identifier: MIT
 *
 * libcxr: following a patient's chest X-rays over time. Umbrella header.
 */
#pragma once

#include "csv.h"
#include "diff.h"
#include "error.h"
#include "image.h"
#include "ingest.h"
#include "lungs.h"
#include "model.h"
#include "pacs.h"
#include "pipeline.h"
#include "progression.h"
#include "register.h"
#include "report.h"
#include "safetensors.h"
#include "severity.h"
#include "shard.h"
#include "signal.h"
#include "trend.h"
#include "store.h"

const char *cxr_version (void);
void cxr_tune_allocator (void);
gboolean cxr_running_installed (void);
void cxr_tune_threads (void);
/* the shortest decimal text that reads back as @v ("0.5772", not
 * "0.57720000000000005"); @buf holds G_ASCII_DTOSTR_BUF_SIZE bytes */
const char *cxr_format_double (double v, char *buf);
/* @json with every number written as cxr_format_double writes it (JSON
 * generators print 17 digits) */
char *cxr_json_shorten_numbers (const char *json);
