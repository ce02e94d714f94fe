// Must NOT compile: a completion handler that takes std::error_code where the scheduler's
// operations complete with std::exception_ptr. ctest (compile_fail_error_code_handler) checks
// that the compiler says so in the scheduler's own words.
#include <system_error>

#include <asio/io_context.hpp>

#include "punctual/scheduler.hpp"

int main() {
  asio::io_context io;
  punctual::scheduler sched{io.get_executor()};
  sched.async_run_now("s", [](std::error_code, std::int64_t) {});
}
