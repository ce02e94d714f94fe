// Built only where the punctual::sqlite target exists: it must bring SQLite3 with it.
#include <sqlite3.h>

#include <cstdio>

#include "punctual/time.hpp"
#if __has_include("punctual/store/sqlite_store.hpp")
#include "punctual/store/sqlite_store.hpp"
#endif

int main() {
  sqlite3* db = nullptr;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) return 1;
  sqlite3_close(db);
  std::printf("punctual::sqlite links SQLite %s\n", sqlite3_libversion());
  return 0;
}
