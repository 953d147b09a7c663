// ASSERT_* cannot return from a coroutine: CO_ASSERT fails the test and leaves the coroutine.
#pragma once

#include <gtest/gtest.h>

#define CO_ASSERT(cond)                            \
  do {                                             \
    if (!(cond)) {                                 \
      ADD_FAILURE() << "assertion failed: " #cond; \
      co_return;                                   \
    }                                              \
  } while (false)
