#include "qsim/security/signature.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

using namespace qsim::security;

namespace {
constexpr std::int64_t kNow = 1'795'242'600;
const std::string kSecret = "whsec_test";
const std::string kBody = R"({"order_id":"o-1","amount":499000,"txn":"T1"})";
}  // namespace

TEST(Signature, KnownVector) {
  // HMAC-SHA256(key="key", message="1.x"), computed independently with Python's hmac module
  EXPECT_EQ(sign("key", 1, "x"), "sha256=fc4913c41a7bf793267e2a384f3261c9436ec2cd097bd745e7b0d99113f510ec");
}

TEST(Signature, AcceptsAFreshValidRequestWithinTheWindowBothWays) {
  for (std::int64_t skew : {-300, -1, 0, 1, 300}) {
    auto sig = sign(kSecret, kNow + skew, kBody);
    EXPECT_EQ(verify(kSecret, std::to_string(kNow + skew), sig, kBody, kNow), Verdict::ok) << skew;
  }
}

TEST(Signature, EachRejectionHasItsOwnVerdict) {
  auto ts = std::to_string(kNow);
  auto sig = sign(kSecret, kNow, kBody);
  EXPECT_EQ(verify("wrong", ts, sig, kBody, kNow), Verdict::bad_signature);
  EXPECT_EQ(verify(kSecret, ts, sig, kBody + " ", kNow), Verdict::bad_signature) << "tampered body";
  EXPECT_EQ(verify(kSecret, std::to_string(kNow + 1), sig, kBody, kNow), Verdict::bad_signature) << "tampered timestamp";
  EXPECT_EQ(verify(kSecret, std::to_string(kNow - 301), sign(kSecret, kNow - 301, kBody), kBody, kNow), Verdict::stale);
  EXPECT_EQ(verify(kSecret, std::to_string(kNow + 301), sign(kSecret, kNow + 301, kBody), kBody, kNow), Verdict::future);
  EXPECT_EQ(verify(kSecret, std::nullopt, sig, kBody, kNow), Verdict::missing_headers);
  EXPECT_EQ(verify(kSecret, ts, std::nullopt, kBody, kNow), Verdict::missing_headers);
  EXPECT_EQ(verify(kSecret, "", sig, kBody, kNow), Verdict::missing_headers);
  EXPECT_EQ(verify(kSecret, "12x", sig, kBody, kNow), Verdict::malformed_headers);
  EXPECT_EQ(verify(kSecret, ts, "md5=abc", kBody, kNow), Verdict::malformed_headers);
  EXPECT_EQ(verify(kSecret, ts, "sha256=" + std::string(64, 'G'), kBody, kNow), Verdict::malformed_headers);
}

TEST(Signature, WindowIsConfigurable) {
  auto sig = sign(kSecret, kNow - 20, kBody);
  EXPECT_EQ(verify(kSecret, std::to_string(kNow - 20), sig, kBody, kNow, std::chrono::seconds(10)), Verdict::stale);
  EXPECT_EQ(verify(kSecret, std::to_string(kNow - 20), sig, kBody, kNow, std::chrono::seconds(30)), Verdict::ok);
}

TEST(Signature, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
}

TEST(Secrets, FromEnvironmentThenFileNeverArgv) {
  ::unsetenv("QSIM_UNITTEST_SECRET");
  ::unsetenv("QSIM_UNITTEST_SECRET_FILE");
  try {
    (void)load_secret("unittest");
    ADD_FAILURE() << "no secret configured, yet one was loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("QSIM_UNITTEST_SECRET_FILE"), std::string::npos) << e.what();
  }
  auto path = ::testing::TempDir() + "qsim_secret.txt";
  std::ofstream(path) << "from-file\n";
  ::setenv("QSIM_UNITTEST_SECRET_FILE", path.c_str(), 1);
  EXPECT_EQ(load_secret("unittest"), "from-file");
  ::setenv("QSIM_UNITTEST_SECRET", "from-env", 1);
  EXPECT_EQ(load_secret("unittest"), "from-env") << "the variable wins over the file";
  ::unsetenv("QSIM_UNITTEST_SECRET");
  ::unsetenv("QSIM_UNITTEST_SECRET_FILE");
}
