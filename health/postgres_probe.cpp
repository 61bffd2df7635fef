// postgres probe: libpq driven fully non-blocking on the loop.
//
// An attempt: (1) the server name is resolved with uv_getaddrinfo and handed to libpq as
// `hostaddr` (with `host` kept for TLS/SNI and error texts), so libpq never does DNS;
// (2) PQconnectStartParams, then PQconnectPoll whenever a uv_poll_t on PQsocket fires;
// (3) PQsendQuery and PQconsumeInput/PQisBusy/PQgetResult on the same poll.
//
// Pitfall handled here: libpq may close its socket during connect and open a new one with
// the same fd number, and libuv 1.44 aborts when a watched fd is closed and reused under
// it. So the poll handle is closed before every PQconnectPoll call and a new one is made
// for the then-current PQsocket afterwards (never a dup). Handles go to the Graveyard.
//
// libpq ignores connect_timeout in async mode: one uv_timer bounds the whole attempt.
//
// Connection reuse: one connection is held between probes and the query runs on it, but
// every 5th probe connects fresh *while still holding the old one*, since a held connection
// hides max_connections exhaustion (53300). A failed fresh connect keeps the old one and
// the next probes keep trying fresh ones until one succeeds. A held connection that turns
// out broken (or times out) is dropped; the next probe reconnects.
//
// Server errors are reported as "SQLSTATE message" (28P01, 3D000, 57P03, 53300, ...), other
// failures with libpq's own line (refused) or "timeout after N ms". Loop thread only.
#include <libpq-fe.h>

#include <cstdlib>
#include <optional>
#include <utility>
#include <vector>

#include "health/probe.hpp"
#include "health/probe_logic.hpp"
#include "health/uv_util.hpp"

namespace gh::health {
namespace {

constexpr unsigned kProbesPerConnection = 5;

struct PqFinish {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PqClear {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgConn = std::unique_ptr<PGconn, PqFinish>;
using PgResult = std::unique_ptr<PGresult, PqClear>;

using Params = std::vector<std::pair<std::string, std::string>>;

// The parsed target: explicit conninfo options plus what must be resolved first.
struct PgTarget {
  Params params;
  std::string resolve_host;  // a name or address for uv_getaddrinfo; "" = nothing to resolve
};

bool has_param(const Params& params, std::string_view key) {
  for (const auto& [k, v] : params) {
    if (k == key) return true;
  }
  return false;
}

std::string param(const Params& params, std::string_view key) {
  for (const auto& [k, v] : params) {
    if (k == key) return v;
  }
  return {};
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

Result<PgTarget> parse_target(const std::string& target) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(target.c_str(), &error);
  if (!options) {
    std::string why = error ? error : "out of memory";
    PQfreemem(error);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return fail("invalid postgres target: " + why);
  }
  PgTarget parsed;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (o->val && *o->val) parsed.params.emplace_back(o->keyword, o->val);
  }
  PQconninfoFree(options);
  // With hostaddr (lists too) libpq resolves nothing: everything goes to it as given.
  if (has_param(parsed.params, "hostaddr") || !env("PGHOSTADDR").empty()) return parsed;
  std::string host =
      has_param(parsed.params, "host") ? param(parsed.params, "host") : env("PGHOST");
  if (host.find(',') != std::string::npos ||
      param(parsed.params, "port").find(',') != std::string::npos) {
    return fail("postgres target names several hosts to resolve; give one (or hostaddr lists)");
  }
  const bool socket_path = host.empty() || host[0] == '/' || host[0] == '@';
  if (!socket_path) parsed.resolve_host = host;
  return parsed;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

// The SQL sent per probe.
std::string probe_sql(const PostgresProbeSpec& spec) {
  if (!spec.require_primary) return spec.query;
  std::string query = spec.query;
  while (!query.empty() && (query.back() == ';' || query.back() == ' ' || query.back() == '\n'))
    query.pop_back();
  if (query.empty() || query == "SELECT 1") return "SELECT pg_is_in_recovery()";
  return query + "; SELECT pg_is_in_recovery()";
}

void ignore_notice(void*, const char*) {}

class PostgresProbe final : public Probe {
 public:
  PostgresProbe(uv_loop_t* loop, PgTarget target, PostgresProbeSpec spec, Milliseconds timeout)
      : loop_(loop),
        target_(std::move(target)),
        spec_(std::move(spec)),
        sql_(probe_sql(spec_)),
        timeout_(timeout),
        timer_(make_timer(loop, this)) {}

  void start(Done done) override;
  void close(std::function<void()> on_closed) override;

 private:
  enum class Phase { idle, resolving, connecting, querying };

  void connect_fresh();
  void start_connect(const Lookup::Addresses& addresses);
  std::vector<std::string> keywords(const Lookup::Addresses& addresses) const;
  void after_connect_poll(PostgresPollingStatusType status);
  void on_connected();
  void send_query();
  void on_query_event(int events);
  std::optional<ProbeResult> read_results();
  ProbeResult evaluate();
  void drop_held();
  void drop_connecting();

  bool watch(PGconn* conn, int events);
  void unwatch();
  void complete(ProbeResult result);
  void deliver(ProbeResult result);
  static void on_poll(uv_poll_t* poll, int status, int events);
  static void on_timer(uv_timer_t* timer);

  uv_loop_t* loop_;
  PgTarget target_;
  PostgresProbeSpec spec_;
  std::string sql_;
  Milliseconds timeout_;
  std::unique_ptr<uv_timer_t> timer_;
  std::unique_ptr<uv_poll_t> poll_;
  int poll_fd_ = -1;
  std::shared_ptr<Lookup> lookup_;
  PgConn held_;        // idle between probes; the one queried
  PgConn connecting_;  // a fresh connection in progress
  unsigned uses_ = 0;  // probes answered by held_
  bool fresh_needed_ = false;
  Phase phase_ = Phase::idle;
  std::optional<std::string> query_error_;
  std::string last_value_;  // first field of the last row set
  std::optional<ProbeResult> pending_;
  Done done_;
  Graveyard graveyard_;
};

void PostgresProbe::start(Done done) {
  done_ = std::move(done);
  pending_.reset();
  query_error_.reset();
  last_value_.clear();
  uv_timer_start(timer_.get(), on_timer, static_cast<uint64_t>(timeout_.count()), 0);
  if (held_ && uses_ >= kProbesPerConnection) fresh_needed_ = true;
  // A held connection the server closed meanwhile shows up here (EOF on read).
  if (held_ && (!PQconsumeInput(held_.get()) || PQstatus(held_.get()) == CONNECTION_BAD)) {
    drop_held();
  }
  if (held_ && !fresh_needed_) return send_query();
  connect_fresh();
}

void PostgresProbe::close(std::function<void()> on_closed) {
  done_ = nullptr;
  cancel_lookup(lookup_);
  unwatch();  // before PQfinish closes the fd
  connecting_.reset();
  held_.reset();
  graveyard_.bury(std::move(timer_));
  graveyard_.on_empty(loop_, std::move(on_closed));
}

void PostgresProbe::connect_fresh() {
  if (target_.resolve_host.empty()) return start_connect({});
  phase_ = Phase::resolving;
  auto lookup = Lookup::start(loop_, target_.resolve_host, 0, [this](Result<Lookup::Addresses> r) {
    lookup_.reset();
    if (!r) return complete(ProbeResult::failure(r.error().message));
    start_connect(*r);
  });
  if (!lookup) return complete(ProbeResult::failure(lookup.error().message));
  lookup_ = std::move(*lookup);
}

// keyword, value, keyword, value, ...
std::vector<std::string> PostgresProbe::keywords(const Lookup::Addresses& addresses) const {
  std::vector<std::string> kv;
  for (const auto& [k, v] : target_.params) {
    if (!addresses.empty() && k == "host") continue;
    kv.insert(kv.end(), {k, v});
  }
  if (!addresses.empty()) {
    // Every address is tried in turn by libpq; `host` stays the name for TLS and messages.
    std::vector<std::string> hosts, hostaddrs;
    for (const sockaddr_storage& a : addresses) {
      std::string text = sockaddr_text(a);  // "1.2.3.4:0" / "[::1]:0"
      text = text.substr(0, text.rfind(':'));
      if (text.front() == '[') text = text.substr(1, text.size() - 2);
      hostaddrs.push_back(text);
      hosts.push_back(target_.resolve_host);
    }
    kv.insert(kv.end(), {"host", join(hosts), "hostaddr", join(hostaddrs)});
  }
  if (!spec_.password.empty() && !has_param(target_.params, "password"))
    kv.insert(kv.end(), {"password", spec_.password});
  // GSSAPI negotiation may consult a Kerberos credential cache (blocking I/O).
  if (!has_param(target_.params, "gssencmode")) kv.insert(kv.end(), {"gssencmode", "disable"});
  if (!has_param(target_.params, "application_name"))
    kv.insert(kv.end(), {"application_name", "gatehouse-health"});
  return kv;
}

void PostgresProbe::start_connect(const Lookup::Addresses& addresses) {
  const std::vector<std::string> kv = keywords(addresses);
  std::vector<const char*> keys, values;
  for (std::size_t i = 0; i < kv.size(); i += 2) {
    keys.push_back(kv[i].c_str());
    values.push_back(kv[i + 1].c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  connecting_.reset(PQconnectStartParams(keys.data(), values.data(), 0));
  if (!connecting_) return complete(ProbeResult::failure("libpq: out of memory"));
  PQsetErrorVerbosity(connecting_.get(), PQERRORS_VERBOSE);  // puts the SQLSTATE in messages
  PQsetNoticeProcessor(connecting_.get(), ignore_notice, nullptr);
  phase_ = Phase::connecting;
  if (PQstatus(connecting_.get()) == CONNECTION_BAD)
    return after_connect_poll(PGRES_POLLING_FAILED);
  after_connect_poll(PGRES_POLLING_WRITING);  // as documented for a fresh PQconnectStart
}

void PostgresProbe::after_connect_poll(PostgresPollingStatusType status) {
  switch (status) {
    case PGRES_POLLING_READING:
      if (!watch(connecting_.get(), UV_READABLE)) drop_connecting();
      return;
    case PGRES_POLLING_WRITING:
      if (!watch(connecting_.get(), UV_WRITABLE)) drop_connecting();
      return;
    case PGRES_POLLING_OK:
      return on_connected();
    default: {
      std::string why = summarize_pg_error(PQerrorMessage(connecting_.get()));
      drop_connecting();
      return complete(ProbeResult::failure(why));
    }
  }
}

void PostgresProbe::on_connected() {
  held_ = std::move(connecting_);  // the old held connection (if any) ends here
  uses_ = 0;
  fresh_needed_ = false;
  PQsetnonblocking(held_.get(), 1);
  send_query();
}

void PostgresProbe::send_query() {
  phase_ = Phase::querying;
  if (!PQsendQuery(held_.get(), sql_.c_str())) {
    std::string why = summarize_pg_error(PQerrorMessage(held_.get()));
    drop_held();
    return complete(ProbeResult::failure(why));
  }
  on_query_event(UV_WRITABLE);  // flushes, then waits for the answer
}

void PostgresProbe::on_query_event(int events) {
  PGconn* conn = held_.get();
  int flush = 0;
  if (events & UV_WRITABLE) flush = PQflush(conn);
  if (flush >= 0 && (events & UV_READABLE) && !PQconsumeInput(conn)) flush = -1;
  if (flush < 0) {
    std::string why = summarize_pg_error(PQerrorMessage(conn));
    drop_held();
    return complete(ProbeResult::failure(why));
  }
  if (auto verdict = read_results()) return complete(std::move(*verdict));
  if (!watch(conn, UV_READABLE | (flush == 1 ? UV_WRITABLE : 0))) drop_held();
}

// Drains the results available without blocking; a verdict once the last one arrived.
std::optional<ProbeResult> PostgresProbe::read_results() {
  PGconn* conn = held_.get();
  while (!PQisBusy(conn)) {
    PgResult result(PQgetResult(conn));
    if (!result) return evaluate();
    ExecStatusType status = PQresultStatus(result.get());
    if (status == PGRES_TUPLES_OK && PQntuples(result.get()) > 0 && PQnfields(result.get()) > 0) {
      last_value_ = PQgetvalue(result.get(), 0, 0);
    }
    if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE ||
        status == PGRES_NONFATAL_ERROR) {
      if (query_error_) continue;
      const char* sqlstate = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
      const char* primary = PQresultErrorField(result.get(), PG_DIAG_MESSAGE_PRIMARY);
      query_error_ = sqlstate && primary ? std::string(sqlstate) + " " + primary
                                         : summarize_pg_error(PQresultErrorMessage(result.get()));
    }
  }
  return std::nullopt;
}

ProbeResult PostgresProbe::evaluate() {
  unwatch();
  ++uses_;
  if (PQstatus(held_.get()) == CONNECTION_BAD) drop_held();
  if (query_error_) return ProbeResult::failure(*query_error_);
  if (spec_.require_primary && last_value_ == "t") {
    return ProbeResult::failure("server is in recovery (a standby) and require_primary is set");
  }
  return ProbeResult::pass(spec_.require_primary ? "ok (primary)" : "ok");
}

void PostgresProbe::drop_held() {
  if (phase_ == Phase::querying) unwatch();
  held_.reset();
}

void PostgresProbe::drop_connecting() {
  if (phase_ == Phase::connecting) unwatch();
  connecting_.reset();
}

// Watches the current socket of `conn`. A poll handle only ever watches the fd it was made
// for; a different fd (libpq reconnected) gets a new handle. False (after reporting the
// failure) when libuv refuses.
bool PostgresProbe::watch(PGconn* conn, int events) {
  const int fd = PQsocket(conn);
  if (fd < 0) {
    complete(ProbeResult::failure("libpq has no socket"));
    return false;
  }
  if (poll_ && poll_fd_ != fd) unwatch();
  if (!poll_) {
    auto poll = std::make_unique<uv_poll_t>();
    if (int rc = uv_poll_init(loop_, poll.get(), fd); rc != 0) {
      complete(ProbeResult::failure(std::string("uv_poll_init: ") + uv_strerror(rc)));
      return false;
    }
    poll->data = this;
    poll_ = std::move(poll);
    poll_fd_ = fd;
  }
  uv_poll_start(poll_.get(), events, on_poll);
  return true;
}

void PostgresProbe::unwatch() {
  if (!poll_) return;
  uv_poll_stop(poll_.get());
  graveyard_.bury(std::move(poll_));  // uv_close unregisters the fd right away
  poll_fd_ = -1;
}

void PostgresProbe::on_poll(uv_poll_t* poll, int status, int events) {
  auto* self = static_cast<PostgresProbe*>(poll->data);
  if (status < 0) events = UV_READABLE | UV_WRITABLE;  // let libpq find the error
  if (self->phase_ == Phase::connecting) {
    self->unwatch();  // before PQconnectPoll: it may close and reopen the socket
    return self->after_connect_poll(PQconnectPoll(self->connecting_.get()));
  }
  if (self->phase_ == Phase::querying) return self->on_query_event(events);
  self->unwatch();
}

// Ends the attempt now; `done` runs from the next timer callback (never inside start()).
void PostgresProbe::complete(ProbeResult result) {
  unwatch();
  phase_ = Phase::idle;
  pending_ = std::move(result);
  uv_timer_start(timer_.get(), on_timer, 0, 0);
}

void PostgresProbe::on_timer(uv_timer_t* timer) {
  auto* self = static_cast<PostgresProbe*>(timer->data);
  if (self->pending_) {
    ProbeResult result = std::move(*self->pending_);
    self->pending_.reset();
    return self->deliver(std::move(result));
  }
  // Timeout: a stuck fresh connect is abandoned (the held one stays for the next try);
  // a stuck query means the held connection is no good.
  cancel_lookup(self->lookup_);
  self->unwatch();
  self->connecting_.reset();
  if (self->phase_ == Phase::querying) self->held_.reset();
  self->phase_ = Phase::idle;
  self->deliver(ProbeResult::failure(timeout_reason(self->timeout_)));
}

void PostgresProbe::deliver(ProbeResult result) {
  uv_timer_stop(timer_.get());
  if (!done_) return;
  Done done = std::move(done_);
  done_ = nullptr;
  done(std::move(result));  // may start the next attempt or close this probe
}

}  // namespace

Result<void> check_postgres_target(const std::string& target) {
  auto parsed = parse_target(target);
  if (!parsed) return tl::unexpected(parsed.error());
  return {};
}

Result<std::unique_ptr<Probe>> make_postgres_probe(uv_loop_t* loop, PostgresProbeSpec spec,
                                                   Milliseconds timeout) {
  auto target = parse_target(spec.target);
  if (!target) return tl::unexpected(target.error());
  std::unique_ptr<Probe> probe =
      std::make_unique<PostgresProbe>(loop, std::move(*target), std::move(spec), timeout);
  return probe;
}

}  // namespace gh::health
