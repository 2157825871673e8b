#include "qsim/sim/fault_proxy.h"

#include "qsim/sim/hash.h"

#include <utility>  // Boost 1.74's Asio uses std::exchange without including it

#include <boost/asio.hpp>

#include <array>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

namespace qsim::sim {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Steady = std::chrono::steady_clock;

struct FaultProxy::Impl {
  struct Conn;
  struct Link {
    std::string name;
    int upstream = 0;
    std::unique_ptr<tcp::acceptor> acceptor;
    LinkFaults faults;
    LinkCounters counters;
    std::set<std::shared_ptr<Conn>> open;
  };

  // One proxied connection: two sockets, a pump per direction.
  struct Conn : std::enable_shared_from_this<Conn> {
    Conn(Impl& owner, Link& of, tcp::socket accepted)
        : impl(owner), link(of), client(std::move(accepted)), upstream(owner.io),
          timers{asio::steady_timer(owner.io), asio::steady_timer(owner.io)} {}
    Impl& impl;
    Link& link;
    tcp::socket client, upstream;
    std::array<asio::steady_timer, 2> timers;
    std::array<std::array<char, 16384>, 2> buffers{};
    std::array<Steady::time_point, 2> next_free{};  // bandwidth: when the direction may send again
    bool closed = false;
    bool answered = true;  // the upstream has spoken since the client last did: its next bytes start an exchange

    void close(bool reset) {
      if (closed) return;
      closed = true;
      boost::system::error_code ec;
      for (tcp::socket* s : {&client, &upstream}) {
        if (reset && s->is_open()) s->set_option(asio::socket_base::linger(true, 0), ec);
        s->close(ec);
      }
      for (auto& t : timers) t.cancel();
      std::lock_guard lock(impl.mu);
      link.open.erase(shared_from_this());
    }

    void start() {
      auto self = shared_from_this();
      upstream.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), static_cast<unsigned short>(link.upstream)),
                             [self](boost::system::error_code ec) {
                               if (ec) return self->close(false);
                               // Both legs without Nagle's algorithm, as every client and server of
                               // ours: a request's headers and body arrive as two chunks, and the
                               // body, written on its own, would wait for the server's delayed ACK
                               // of the headers (40 ms on Linux) on a kept-alive connection.
                               boost::system::error_code nodelay;
                               self->client.set_option(tcp::no_delay(true), nodelay);
                               self->upstream.set_option(tcp::no_delay(true), nodelay);
                               self->pump(0);
                               self->pump(1);
                             });
    }

    tcp::socket& from(int dir) { return dir == 0 ? client : upstream; }
    tcp::socket& to(int dir) { return dir == 0 ? upstream : client; }

    void pump(int dir) {
      auto self = shared_from_this();
      from(dir).async_read_some(asio::buffer(buffers[dir]), [self, dir](boost::system::error_code ec, std::size_t n) {
        if (ec) return self->close(false);
        self->forward(dir, n);
      });
    }

    // Holds the chunk as the link's faults say, then writes it on and reads the next.
    void forward(int dir, std::size_t n) {
      LinkFaults f;
      {
        std::lock_guard lock(impl.mu);
        f = link.faults;
      }
      // The reset roll is per exchange (a request, a command), not per connection: a client that
      // keeps its connection alive meets the fault as often as one that connects each time.
      if (dir == 1) answered = true;
      if (dir == 0 && answered) {
        answered = false;
        if (f.reset_probability > 0 && impl.uniform() < f.reset_probability) {
          {
            std::lock_guard lock(impl.mu);
            link.counters.resets++;
          }
          return close(true);
        }
      }
      auto self = shared_from_this();
      if (f.blackhole) {  // silence: look again in a moment, forward nothing meanwhile
        timers[dir].expires_after(std::chrono::milliseconds(2));
        timers[dir].async_wait([self, dir, n](boost::system::error_code ec) {
          if (ec || self->closed) return;
          self->forward(dir, n);
        });
        return;
      }
      auto now = Steady::now();
      auto due = now + f.latency + std::chrono::microseconds(static_cast<long long>(impl.uniform() * static_cast<double>(f.jitter.count())));
      if (f.bytes_per_s > 0) {
        auto start = std::max(now, next_free[dir]);
        next_free[dir] = start + std::chrono::microseconds(static_cast<long long>(static_cast<double>(n) / f.bytes_per_s * 1e6));
        due = std::max(due, next_free[dir]);
      }
      if (due <= now) return write(dir, n);
      {
        std::lock_guard lock(impl.mu);
        link.counters.delayed_chunks++;
      }
      timers[dir].expires_at(due);
      timers[dir].async_wait([self, dir, n](boost::system::error_code ec) {
        if (ec || self->closed) return;
        self->write(dir, n);
      });
    }

    void write(int dir, std::size_t n) {
      {
        std::lock_guard lock(impl.mu);
        link.counters.bytes += static_cast<long long>(n);
      }
      auto self = shared_from_this();
      asio::async_write(to(dir), asio::buffer(buffers[dir].data(), n), [self, dir](boost::system::error_code ec, std::size_t) {
        if (ec) return self->close(false);
        self->pump(dir);
      });
    }
  };

  explicit Impl(std::uint64_t s) : seed(s), guard(asio::make_work_guard(io)) {}

  double uniform() {  // called on the io thread only
    std::uint64_t x = detail::splitmix64(seed ^ detail::splitmix64(++draws));
    return static_cast<double>(x >> 11) * 0x1.0p-53;
  }

  // `this` outlives every handler: the destructor stops the io thread and joins it before the
  // Impl goes (a shared_ptr captured here would keep the Impl alive from its own queue).
  void accept(Link& link) {
    link.acceptor->async_accept([this, &link](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;  // the acceptor was closed
      auto conn = std::make_shared<Conn>(*this, link, std::move(socket));
      {
        std::lock_guard lock(mu);
        link.counters.connections++;
        link.open.insert(conn);
      }
      conn->start();
      accept(link);
    });
  }

  std::uint64_t seed, draws = 0;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  mutable std::mutex mu;
  std::map<std::string, std::unique_ptr<Link>> links;
  std::thread thread;
};

FaultProxy::FaultProxy(std::uint64_t seed) : impl_(std::make_shared<Impl>(seed)) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

FaultProxy::~FaultProxy() {
  asio::post(impl_->io, [impl = impl_.get()] {
    for (auto& [name, link] : impl->links) {
      boost::system::error_code ec;
      link->acceptor->close(ec);
      std::set<std::shared_ptr<Impl::Conn>> open;
      {
        std::lock_guard lock(impl->mu);
        open = link->open;
      }
      for (auto& c : open) c->close(false);
    }
    impl->guard.reset();  // every operation was cancelled above: run() returns once their handlers ran
  });
  impl_->thread.join();
  for (auto& [name, link] : impl_->links) link->open.clear();
}

int FaultProxy::add_link(const std::string& name, int upstream_port) {
  auto link = std::make_unique<Impl::Link>();
  link->name = name;
  link->upstream = upstream_port;
  link->acceptor = std::make_unique<tcp::acceptor>(impl_->io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  link->acceptor->listen(1024);
  int port = link->acceptor->local_endpoint().port();
  Impl::Link* raw = link.get();
  {
    std::lock_guard lock(impl_->mu);
    impl_->links[name] = std::move(link);
  }
  asio::post(impl_->io, [impl = impl_.get(), raw] { impl->accept(*raw); });
  return port;
}

bool FaultProxy::has_link(const std::string& link) const {
  std::lock_guard lock(impl_->mu);
  return impl_->links.count(link) > 0;
}

void FaultProxy::set(const std::string& link, LinkFaults faults) {
  std::lock_guard lock(impl_->mu);
  impl_->links.at(link)->faults = faults;
}

void FaultProxy::reset_all(const std::string& link) {
  asio::post(impl_->io, [impl = impl_.get(), link] {
    std::set<std::shared_ptr<Impl::Conn>> open;
    {
      std::lock_guard lock(impl->mu);
      auto it = impl->links.find(link);
      if (it == impl->links.end()) return;
      open = it->second->open;
      it->second->counters.resets += static_cast<long long>(open.size());
    }
    for (auto& c : open) c->close(true);
  });
}

std::map<std::string, LinkCounters> FaultProxy::counters() const {
  std::lock_guard lock(impl_->mu);
  std::map<std::string, LinkCounters> out;
  for (const auto& [name, link] : impl_->links) out[name] = link->counters;
  return out;
}

}  // namespace qsim::sim
