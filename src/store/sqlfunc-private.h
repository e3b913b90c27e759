/* SPDX-License-Identifier: MIT
 * SQL functions registered on cxrtrack's own connections (sqlfunc.c). */
#pragma once

#include <sqlite3.h>

int cxr__sql_register_functions (sqlite3 *db);
