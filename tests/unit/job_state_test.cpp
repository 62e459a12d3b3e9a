#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "brokertls/store/files.hpp"
#include "expect_error.hpp"
#include "renewal/job_state.hpp"
#include "support.hpp"

namespace brokertls {
namespace {

using nlohmann::json;
using test::error_of;

const TimePoint t0 = from_iso8601("2026-11-24T17:05:00Z");

RenewalEvent event(int i) {
    return {"failed", "mqtt", "attempt " + std::to_string(i), t0 + std::chrono::minutes(i)};
}

JobState sample() {
    JobState s;
    s.next_run = t0 + std::chrono::hours(2);
    s.consecutive_failures = 3;
    s.last_error = "urn:ietf:params:acme:error:rateLimited: too many \"new orders\"";
    s.last_result = "failed";
    s.last_attempt = t0;
    s.last_success = t0 - Days(30);
    s.ca_retry_at = t0 + std::chrono::hours(1);
    s.directory = "https://acme.example/directory";
    s.record(event(1));
    s.record({"obtained", "mqtt", "new certificate, valid until 2027-02-22", t0});
    return s;
}

void expect_same(const JobState& a, const JobState& b) {
    EXPECT_EQ(a.next_run, b.next_run);
    EXPECT_EQ(a.consecutive_failures, b.consecutive_failures);
    EXPECT_EQ(a.last_error, b.last_error);
    EXPECT_EQ(a.last_result, b.last_result);
    EXPECT_EQ(a.last_attempt, b.last_attempt);
    EXPECT_EQ(a.last_success, b.last_success);
    EXPECT_EQ(a.ca_retry_at, b.ca_retry_at);
    EXPECT_EQ(a.directory, b.directory);
    ASSERT_EQ(a.activity.size(), b.activity.size());
    for (std::size_t i = 0; i < a.activity.size(); ++i) {
        EXPECT_EQ(a.activity[i].type, b.activity[i].type);
        EXPECT_EQ(a.activity[i].profile, b.activity[i].profile);
        EXPECT_EQ(a.activity[i].message, b.activity[i].message);
        EXPECT_EQ(a.activity[i].at, b.activity[i].at);
    }
}

TEST(RenewalEvent, ToJsonHasTheFourFieldsOnOneLine) {
    std::string text = RenewalEvent{"obtained", "mqtt", "valid until 2027", t0}.to_json();
    EXPECT_EQ(text.find('\n'), std::string::npos);
    json j = json::parse(text);
    EXPECT_EQ(j, json({{"type", "obtained"},
                       {"profile", "mqtt"},
                       {"message", "valid until 2027"},
                       {"at", "2026-11-24T17:05:00Z"}}));
}

TEST(RenewalEvent, InvalidUtf8IsReplacedNotThrown) {
    RenewalEvent e{"failed", "mqtt", std::string("hook said \xff\xfe"), t0};
    std::string text;
    ASSERT_NO_THROW(text = e.to_json());
    EXPECT_EQ(json::parse(text)["message"], "hook said \xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(JobState, JsonRoundTripWithReadableTimes) {
    JobState s = sample();
    std::string text = s.to_json();
    json j = json::parse(text);
    EXPECT_EQ(j["next_run"], "2026-11-24T19:05:00Z");
    EXPECT_EQ(j["consecutive_failures"], 3);
    EXPECT_EQ(j["last_success"], "2026-10-25T17:05:00Z");
    EXPECT_EQ(j["ca_retry_at"], "2026-11-24T18:05:00Z");
    ASSERT_TRUE(j["activity"].is_array());
    EXPECT_EQ(j["activity"][1]["type"], "obtained");
    expect_same(JobState::from_json(text, "job.json"), s);
}

TEST(JobState, FreshStateRoundTripsWithNullTimes) {
    JobState fresh;
    json j = json::parse(fresh.to_json());
    EXPECT_TRUE(j["next_run"].is_null());
    EXPECT_TRUE(j["last_success"].is_null());
    EXPECT_EQ(j["activity"], json::array());
    expect_same(JobState::from_json(fresh.to_json(), "job.json"), fresh);
}

TEST(JobState, MissingFieldsKeepDefaultsAndUnknownOnesAreIgnored) {
    JobState s = JobState::from_json(R"({"consecutive_failures": 2, "future_field": [1]})", "j");
    EXPECT_EQ(s.consecutive_failures, 2);
    EXPECT_EQ(s.next_run, TimePoint{});
    EXPECT_TRUE(s.activity.empty());
}

TEST(JobState, FromJsonNamesTheSourceFieldAndReason) {
    auto bad = [](const std::string& text) {
        return error_of([&] { JobState::from_json(text, "state/mqtt/job.json"); },
                        ErrorKind::Input);
    };
    EXPECT_EQ(bad("{\"next_run\": "), "state/mqtt/job.json: not valid JSON");
    EXPECT_EQ(bad(""), "state/mqtt/job.json: not valid JSON");
    EXPECT_EQ(bad("[1]"), "state/mqtt/job.json: must be an object");
    EXPECT_EQ(bad(R"({"consecutive_failures": "3"})"),
              "state/mqtt/job.json: consecutive_failures: must be a whole number of at least 0");
    EXPECT_EQ(bad(R"({"consecutive_failures": -1})"),
              "state/mqtt/job.json: consecutive_failures: must be a whole number of at least 0");
    EXPECT_EQ(bad(R"({"last_error": 5})"), "state/mqtt/job.json: last_error: must be a string");
    EXPECT_EQ(bad(R"({"next_run": "tomorrow"})"),
              "state/mqtt/job.json: next_run: 'tomorrow' is not an ISO 8601 UTC time");
    EXPECT_EQ(bad(R"({"activity": {}})"), "state/mqtt/job.json: activity: must be an array");
    EXPECT_EQ(bad(R"({"activity": [{"type": "x", "at": "2026-01-01T00:00:00Z"}, 7]})"),
              "state/mqtt/job.json: activity[1]: must be an object");
    EXPECT_EQ(bad(R"({"activity": [{"type": "x", "at": null}]})"),
              "state/mqtt/job.json: activity[0].at: must be an ISO 8601 time");
}

TEST(JobState, RecordKeepsTheNewestEvents) {
    JobState s;
    for (int i = 0; i < 25; ++i) s.record(event(i));
    ASSERT_EQ(s.activity.size(), JobState::activity_limit);
    EXPECT_EQ(s.activity.front().message, "attempt 5");
    EXPECT_EQ(s.activity.back().message, "attempt 24");
}

TEST(JobState, LoadingTooLongAnActivityKeepsTheNewest) {
    json events = json::array();
    for (int i = 0; i < 30; ++i) events.push_back(json::parse(event(i).to_json()));
    JobState s = JobState::from_json(json({{"activity", events}}).dump(), "job.json");
    ASSERT_EQ(s.activity.size(), JobState::activity_limit);
    EXPECT_EQ(s.activity.front().message, "attempt 10");
    EXPECT_EQ(s.activity.back().message, "attempt 29");
}

TEST(JobState, SaveAndLoadRoundTripAtomicallyWithPublicMode) {
    test::TempDir dir;
    auto file = dir / "state/mqtt/job.json";  // the profile directory does not exist yet
    sample().save(file);
    struct stat st {};
    ASSERT_EQ(stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0644u);
    std::vector<std::string> warnings;
    expect_same(JobState::load(file, warnings), sample());
    EXPECT_TRUE(warnings.empty());

    JobState changed = sample();
    changed.consecutive_failures = 0;
    changed.last_result = "obtained";
    changed.save(file);
    EXPECT_EQ(JobState::load(file, warnings).last_result, "obtained");
    EXPECT_TRUE(warnings.empty());
    // Only job.json is left: the temporary file was renamed over it.
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(file.parent_path()),
                            std::filesystem::directory_iterator()),
              1);
}

TEST(JobState, MissingFileIsAFreshStateWithoutWarning) {
    test::TempDir dir;
    std::vector<std::string> warnings;
    JobState s = JobState::load(dir / "job.json", warnings);
    EXPECT_TRUE(warnings.empty());
    EXPECT_EQ(s.consecutive_failures, 0);
    EXPECT_EQ(s.next_run, TimePoint{});
}

TEST(JobState, DamagedFileIsAFreshStateWithAWarningNamingFileAndReason) {
    test::TempDir dir;
    auto file = dir / "job.json";
    std::string text = sample().to_json();
    write_file_atomic(file, text.substr(0, text.size() / 2));  // a torn write by another tool
    std::vector<std::string> warnings;
    JobState s = JobState::load(file, warnings);
    EXPECT_EQ(warnings, std::vector<std::string>{file.string() + ": not valid JSON"});
    EXPECT_EQ(s.consecutive_failures, 0);
    EXPECT_TRUE(s.activity.empty());

    write_file_atomic(file, R"({"consecutive_failures": true})");
    warnings.clear();
    JobState::load(file, warnings);
    EXPECT_EQ(warnings,
              std::vector<std::string>{file.string() + ": consecutive_failures: must be a whole "
                                                       "number of at least 0"});

    // Unreadable (a directory where the file should be): also fresh, with the reason.
    auto not_a_file = dir / "dir.json";
    std::filesystem::create_directory(not_a_file);
    warnings.clear();
    s = JobState::load(not_a_file, warnings);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find(not_a_file.string()), std::string::npos) << warnings[0];
    EXPECT_NE(warnings[0].find("cannot read"), std::string::npos) << warnings[0];
    EXPECT_EQ(s.consecutive_failures, 0);
}

}  // namespace
}  // namespace brokertls
