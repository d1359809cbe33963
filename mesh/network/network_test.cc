#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <string>

#include "mesh/network/connection.h"
#include "mesh/network/listener.h"

namespace ottava::mesh {
namespace {

constexpr auto kTimeout = std::chrono::seconds(5);

// Echoes everything it reads back on the same connection.
class Echo : public ReadHandler, public ConnectionCallbacks {
 public:
  explicit Echo(ConnectionPtr connection) : connection_(std::move(connection)) {
    connection_->SetReadHandler(this);
    connection_->AddCallbacks(*this);
  }
  void OnData(Buffer& data, bool) override { connection_->Write(data); }
  void OnEvent(ConnectionEvent event) override { events.push_back(event); }
  std::vector<ConnectionEvent> events;
  ConnectionPtr connection_;
};

// Collects what a client connection reads.
class Collector : public ReadHandler, public ConnectionCallbacks {
 public:
  void OnData(Buffer& data, bool end_stream) override {
    received += data.ToString();
    data.Drain(data.Length());
    if (end_stream) {
      eof = true;
    }
    if (received.size() >= expected && !done_set) {
      done_set = true;
      done.set_value();
    }
  }
  void OnEvent(ConnectionEvent event) override {
    events.push_back(event);
    if (event == ConnectionEvent::kConnectFailed && !done_set) {
      done_set = true;
      done.set_value();
    }
  }
  std::string received;
  size_t expected = 0;
  bool eof = false;
  bool done_set = false;
  std::promise<void> done;
  std::vector<ConnectionEvent> events;
};

TEST(NetworkTest, EchoesALargePayloadThroughListenerAndClientConnection) {
  auto dispatcher = Dispatcher::Create("net-test");
  ASSERT_TRUE(dispatcher.ok());
  (*dispatcher)->Start();
  Dispatcher& loop = **dispatcher;

  auto socket = ListenSocket::Bind(Address{"127.0.0.1", 0});
  ASSERT_TRUE(socket.ok()) << socket.status();
  EXPECT_NE((*socket)->address().port, 0);

  std::unique_ptr<Listener> listener;
  std::vector<std::unique_ptr<Echo>> servers;
  ConnectionPtr client;
  Collector collector;
  std::string payload(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<char>('a' + i % 26);
  }
  collector.expected = payload.size();
  loop.RunAndWait([&] {
    listener = std::make_unique<Listener>(loop, **socket, [&](int fd, const Address& remote) {
      servers.push_back(std::make_unique<Echo>(CreateServerConnection(loop, fd, remote)));
    });
    client = CreateClientConnection(loop, (*socket)->address());
    client->SetReadHandler(&collector);
    client->AddCallbacks(collector);
    Buffer out;
    out.Add(payload);
    client->Write(out);  // queued while connecting
  });
  auto future = collector.done.get_future();
  ASSERT_EQ(future.wait_for(kTimeout), std::future_status::ready);
  EXPECT_EQ(collector.received.size(), payload.size());
  EXPECT_TRUE(collector.received == payload);
  ASSERT_FALSE(collector.events.empty());
  EXPECT_EQ(collector.events.front(), ConnectionEvent::kConnected);

  // The client closes: the server side sees kRemoteClose.
  loop.RunAndWait([&] { client->Close(CloseType::kNoFlush); });
  bool closed = false;
  for (int i = 0; i < 500 && !closed; ++i) {
    loop.RunAndWait([&] {
      closed = !servers.empty() && !servers[0]->events.empty() &&
               servers[0]->events.back() == ConnectionEvent::kRemoteClose;
    });
    if (!closed) {
      usleep(2000);
    }
  }
  EXPECT_TRUE(closed);
  loop.RunAndWait([&] {
    servers.clear();
    client.reset();
    listener.reset();
  });
  loop.Stop();
}

TEST(NetworkTest, ConnectToAClosedPortFails) {
  auto dispatcher = Dispatcher::Create("net-test");
  ASSERT_TRUE(dispatcher.ok());
  (*dispatcher)->Start();
  Dispatcher& loop = **dispatcher;
  // Bind then close to find a port nobody listens on.
  Address closed;
  {
    auto socket = ListenSocket::Bind(Address{"127.0.0.1", 0});
    ASSERT_TRUE(socket.ok());
    closed = (*socket)->address();
  }
  ConnectionPtr client;
  Collector collector;
  loop.RunAndWait([&] {
    client = CreateClientConnection(loop, closed);
    client->SetReadHandler(&collector);
    client->AddCallbacks(collector);
  });
  ASSERT_EQ(collector.done.get_future().wait_for(kTimeout), std::future_status::ready);
  loop.RunAndWait([&] {
    ASSERT_EQ(collector.events.size(), 1u);
    EXPECT_EQ(collector.events[0], ConnectionEvent::kConnectFailed);
    EXPECT_EQ(client->state(), Connection::State::kClosed);
    client.reset();
  });
  loop.Stop();
}

TEST(NetworkTest, BindingAPortInUseFails) {
  auto first = ListenSocket::Bind(Address{"127.0.0.1", 0});
  ASSERT_TRUE(first.ok());
  auto second = ListenSocket::Bind((*first)->address());
  EXPECT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("cannot bind"), std::string::npos);
}

}  // namespace
}  // namespace ottava::mesh
