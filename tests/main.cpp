// The one main() of punctual's Catch2 test executables (punctual-tests, punctual-integration-tests).
// Test files only define TEST_CASEs; they must not define main.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
