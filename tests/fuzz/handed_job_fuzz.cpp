// The worker's decoding of a job handed to it ("id\ntoken\nattempt\nmax\nprio\npayload"): a job
// whose fields hold together, or nothing; never a crash on bytes Redis may hold.
#include "fuzz.h"
#include "qsim/queue/queue.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto job = qsim::queue::decode_handed_job(std::string_view(reinterpret_cast<const char*>(data), size));
  if (job) {
    if (job->id.empty()) qsim::fuzz::violated("a handed job without an id");
    if (job->attempt < 0 || job->max_attempts < 0) qsim::fuzz::violated("a negative attempt count");
  }
  return 0;
}
