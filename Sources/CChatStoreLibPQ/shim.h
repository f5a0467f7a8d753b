#ifndef CCHATSTORE_LIBPQ_SHIM_H
#define CCHATSTORE_LIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
