// Built only where punctual::postgres (or the punctual-postgres pkg-config module) exists: it must
// bring libpq with it.
#include <libpq-fe.h>

#include <cstdio>

#include "punctual/time.hpp"
#if __has_include("punctual/store/postgres_store.hpp")
#include "punctual/store/postgres_store.hpp"
#endif

int main() {
  const int version = PQlibVersion();
  if (version <= 0) return 1;
  std::printf("punctual::postgres links libpq %d\n", version);
  return 0;
}
