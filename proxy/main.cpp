// gatehouse: command line entry. Thin on purpose: parsing arguments and dispatching.
#include <csignal>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "health/healthcheck_client.hpp"
#include "proxy/certificates.hpp"
#include "proxy/server.hpp"

namespace {

constexpr const char* kUsage =
    "usage: gatehouse [-c FILE] [--ready-file PATH]   run the proxy (embedded default config\n"
    "                                                 without -c)\n"
    "       gatehouse check -c FILE                   validate a config file, like nginx -t\n"
    "       gatehouse healthcheck [--url URL] [--live]  exit 0 if URL answers 2xx (default\n"
    "                                                 http://127.0.0.1:9901/readyz?verbose;\n"
    "                                                 --live: /livez), else 1\n"
    "       gatehouse version                         print the version\n"
    "       gatehouse --help                          this text\n";

int check(const std::string& path) {
  if (path.empty()) {
    std::fprintf(stderr, "gatehouse check: -c FILE is required\n");
    return 2;
  }
  auto result = gh::config::load_file(path);
  for (const auto& d : result.warnings) std::fprintf(stderr, "%s (warning)\n", d.text().c_str());
  for (const auto& d : result.errors) std::fprintf(stderr, "%s\n", d.text().c_str());
  if (!result.config) {
    std::fprintf(stderr, "gatehouse check: %zu error(s) in %s\n", result.errors.size(),
                 path.c_str());
    return 1;
  }
  // Certificates too, as the server would load them: missing, mismatched, expired.
  auto problems = gh::proxy::certificate_problems(*result.config);
  for (const auto& p : problems) std::fprintf(stderr, "%s: %s\n", path.c_str(), p.c_str());
  if (!problems.empty()) return 1;
  std::printf("gatehouse check: %s is valid\n", path.c_str());
  return 0;
}

// `gatehouse healthcheck [--url URL | URL] [--live]`: for Docker HEALTHCHECK in images
// without a shell, curl or wget. Exit 0 ready, 1 not (never 2: Docker reserves it).
int healthcheck(std::vector<std::string_view> args) {
  std::string url = gh::health::kDefaultHealthcheckUrl;
  bool live = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--live") {
      live = true;
    } else if (args[i] == "--url" && i + 1 < args.size()) {
      url = std::string(args[++i]);
    } else if (!args[i].starts_with("-")) {
      url = std::string(args[i]);
    } else {
      std::fprintf(stderr, "gatehouse healthcheck: unknown argument '%.*s'\n",
                   static_cast<int>(args[i].size()), args[i].data());
      return 1;
    }
  }
  if (live) {
    const std::size_t readyz = url.rfind("/readyz");
    if (readyz != std::string::npos) url.replace(readyz, std::string::npos, "/livez");
  }
  return gh::health::run_healthcheck(url, std::chrono::seconds(5));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  std::string command = "run";
  gh::proxy::RunOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "gatehouse: %.*s needs a value\n%s", static_cast<int>(a.size()),
                     a.data(), kUsage);
        std::exit(2);
      }
      return std::string(args[++i]);
    };
    if (a == "-h" || a == "--help" || a == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "version" || a == "--version" || a == "-v") {
      std::printf("gatehouse %s\n", GATEHOUSE_VERSION);
      return 0;
    } else if (a == "check" || a == "run") {
      command = std::string(a);
    } else if (a == "healthcheck") {
      return healthcheck({args.begin() + static_cast<long>(i) + 1, args.end()});
    } else if (a == "-c" || a == "--config") {
      options.config_path = value();
    } else if (a == "--ready-file") {
      options.ready_file = value();
    } else {
      std::fprintf(stderr, "gatehouse: unknown argument '%.*s'\n%s", static_cast<int>(a.size()),
                   a.data(), kUsage);
      return 2;
    }
  }
  if (command == "check") return check(options.config_path);
  std::signal(SIGPIPE, SIG_IGN);
  return gh::proxy::run_server(options);
}
