#include "renewal/job_state.hpp"

#include <limits>
#include <nlohmann/json.hpp>

#include "brokertls/error.hpp"
#include "brokertls/store/files.hpp"
#include "json_text.hpp"

namespace brokertls {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json event_json(const RenewalEvent& event) {
    return {{"type", event.type},
            {"profile", event.profile},
            {"message", event.message},
            {"at", to_iso8601(event.at)}};
}

json time_json(TimePoint t) {
    return t == TimePoint{} ? json(nullptr) : json(to_iso8601(t));
}

// Reads the fields of one JSON object, naming the field in every error.
class Fields {
  public:
    Fields(const json& object, std::string source, std::string prefix)
        : object_(object), source_(std::move(source)), prefix_(std::move(prefix)) {
        if (!object_.is_object())
            fail(ErrorKind::Input, source_ + (prefix_.empty() ? "" : ": " + prefix_),
                 "must be an object");
    }

    [[noreturn]] void error(const std::string& key, const std::string& reason) const {
        fail(ErrorKind::Input, source_ + ": " + (prefix_.empty() ? key : prefix_ + "." + key),
             reason);
    }
    const json* find(const std::string& key) const {
        auto it = object_.find(key);
        return it == object_.end() ? nullptr : &*it;
    }
    void string(const std::string& key, std::string& out) const {
        const json* v = find(key);
        if (!v) return;
        if (!v->is_string()) error(key, "must be a string");
        out = v->get<std::string>();
    }
    void time(const std::string& key, TimePoint& out, bool nullable = true) const {
        const json* v = find(key);
        if (!v || (nullable && v->is_null())) return;
        if (!v->is_string()) error(key, "must be an ISO 8601 time");
        try {
            out = from_iso8601(v->get<std::string>());
        } catch (const Error& e) {
            error(key, e.what());
        }
    }
    void count(const std::string& key, int& out) const {
        const json* v = find(key);
        if (!v) return;
        if (!v->is_number_integer() || v->get<long long>() < 0 ||
            v->get<long long>() > std::numeric_limits<int>::max())
            error(key, "must be a whole number of at least 0");
        out = v->get<int>();
    }

  private:
    const json& object_;
    std::string source_;
    std::string prefix_;
};

RenewalEvent event_from(const json& value, const std::string& source, const std::string& path) {
    Fields f(value, source, path);
    RenewalEvent event;
    f.string("type", event.type);
    f.string("profile", event.profile);
    f.string("message", event.message);
    f.time("at", event.at, /*nullable=*/false);
    return event;
}

}  // namespace

std::string RenewalEvent::to_json() const {
    return json_text(event_json(*this));
}

void JobState::record(RenewalEvent event) {
    activity.push_back(std::move(event));
    while (activity.size() > activity_limit) activity.pop_front();
}

std::string JobState::to_json() const {
    json events = json::array();
    for (const auto& e : activity) events.push_back(event_json(e));
    json state = {{"next_run", time_json(next_run)},
                  {"consecutive_failures", consecutive_failures},
                  {"last_error", last_error},
                  {"last_result", last_result},
                  {"last_attempt", time_json(last_attempt)},
                  {"last_success", time_json(last_success)},
                  {"ca_retry_at", time_json(ca_retry_at)},
                  {"directory", directory},
                  {"activity", std::move(events)}};
    return json_text(state, 2) + "\n";
}

JobState JobState::from_json(const std::string& text, const std::string& source) {
    json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) fail(ErrorKind::Input, source, "not valid JSON");
    Fields f(value, source, "");
    JobState state;
    f.time("next_run", state.next_run);
    f.count("consecutive_failures", state.consecutive_failures);
    f.string("last_error", state.last_error);
    f.string("last_result", state.last_result);
    f.time("last_attempt", state.last_attempt);
    f.time("last_success", state.last_success);
    f.time("ca_retry_at", state.ca_retry_at);
    f.string("directory", state.directory);
    if (const json* events = f.find("activity")) {
        if (!events->is_array()) f.error("activity", "must be an array");
        for (std::size_t i = 0; i < events->size(); ++i)
            state.record(event_from((*events)[i], source, "activity[" + std::to_string(i) + "]"));
    }
    return state;
}

JobState JobState::load(const fs::path& file, std::vector<std::string>& warnings) {
    std::error_code ec;  // other stat errors surface below as "cannot read"
    if (fs::symlink_status(file, ec).type() == fs::file_type::not_found) return JobState{};
    try {
        return from_json(read_file(file), file.string());
    } catch (const Error& e) {
        warnings.push_back(e.what());
        return JobState{};
    }
}

void JobState::save(const fs::path& file) const {
    ensure_directory(file.parent_path(), 0700);
    write_file_atomic(file, to_json(), kPublicMode);
}

}  // namespace brokertls
