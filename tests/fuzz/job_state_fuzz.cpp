// A renewal job's state file (STATE_DIR/PROFILE/job.json), read at every start.
#include <optional>

#include "brokertls/error.hpp"
#include "fuzz_support.hpp"
#include "renewal/job_state.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace brokertls;
    std::optional<JobState> state;
    try {
        state = JobState::from_json(fuzz::text(data, size), "fuzz/job.json");
    } catch (const Error&) {
        return 0;
    }
    // What was read is written back at the next save and must read again: a state the module
    // wrote itself is never "damaged". An exception escaping here is a finding.
    JobState::from_json(state->to_json(), "fuzz/job.json: rewritten");
    return 0;
}
