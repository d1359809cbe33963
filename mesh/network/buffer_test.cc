#include "mesh/network/buffer.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "gtest/gtest.h"

namespace ottava::mesh {
namespace {

TEST(BufferTest, AddPrependToString) {
  Buffer buffer;
  EXPECT_TRUE(buffer.Empty());
  buffer.Add("world");
  buffer.Prepend("hello ");
  buffer.Add("!", 1);
  EXPECT_EQ(buffer.Length(), 12u);
  EXPECT_EQ(buffer.ToString(), "hello world!");
}

TEST(BufferTest, MovedFromBufferIsSafeToDrain) {
  Buffer a;
  a.Add("abc");
  Buffer b(std::move(a));
  EXPECT_EQ(b.ToString(), "abc");
  // buffer.h defaults the move constructor, so a's length is stale; draining must not crash.
  a.Drain(a.Length());  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(a.Empty());
}

TEST(BufferTest, LargeAddIsOneSlice) {
  Buffer buffer;
  std::string big(3 * Buffer::kSliceSize + 7, 'x');
  buffer.Add(big);
  EXPECT_EQ(buffer.SliceCount(), 1u);
  EXPECT_EQ(buffer.ToString(), big);
}

TEST(BufferTest, MoveAllMovesSlices) {
  Buffer a;
  Buffer b;
  std::string big(2 * Buffer::kSliceSize, 'y');
  b.Add(big);
  a.Add("head");
  a.Move(b);
  EXPECT_TRUE(b.Empty());
  EXPECT_EQ(b.SliceCount(), 0u);
  EXPECT_EQ(a.Length(), 4 + big.size());
  EXPECT_EQ(a.ToString(), "head" + big);
}

TEST(BufferTest, MovePartial) {
  Buffer a;
  Buffer b;
  b.Add("0123456789");
  a.Move(b, 4);
  EXPECT_EQ(a.ToString(), "0123");
  EXPECT_EQ(b.ToString(), "456789");
  a.Move(b, 100);
  EXPECT_EQ(a.ToString(), "0123456789");
  EXPECT_TRUE(b.Empty());
}

TEST(BufferTest, MoveSmallSlicesCoalesce) {
  Buffer a;
  a.Add("x");
  for (int i = 0; i < 100; ++i) {
    Buffer b;
    b.Add("ab");
    a.Move(b);
  }
  EXPECT_EQ(a.Length(), 201u);
  EXPECT_EQ(a.SliceCount(), 1u);
}

TEST(BufferTest, DrainAcrossSlices) {
  Buffer a;
  for (int i = 0; i < 3; ++i) {
    Buffer b;
    b.Add(std::string(Buffer::kSliceSize, static_cast<char>('a' + i)));
    a.Move(b);
  }
  EXPECT_EQ(a.SliceCount(), 3u);
  a.Drain(Buffer::kSliceSize + 10);
  EXPECT_EQ(a.Length(), 2 * Buffer::kSliceSize - 10);
  EXPECT_EQ(a.SliceCount(), 2u);
  char c;
  a.CopyOut(0, 1, &c);
  EXPECT_EQ(c, 'b');
  a.Drain(1000000);
  EXPECT_TRUE(a.Empty());
  EXPECT_EQ(a.SliceCount(), 0u);
}

TEST(BufferTest, CopyOutAndLinearize) {
  Buffer a;
  Buffer b;
  a.Add(std::string(Buffer::kSliceSize, 'a'));
  b.Add(std::string(Buffer::kSliceSize, 'b'));
  a.Move(b);
  ASSERT_EQ(a.SliceCount(), 2u);
  char out[4];
  a.CopyOut(Buffer::kSliceSize - 2, 4, out);
  EXPECT_EQ(std::string(out, 4), "aabb");
  const char* p = a.Linearize(Buffer::kSliceSize + 2);
  EXPECT_EQ(std::string(p + Buffer::kSliceSize - 1, 3), "abb");
  EXPECT_EQ(a.Length(), 2 * Buffer::kSliceSize);
  EXPECT_EQ(a.ToString(),
            std::string(Buffer::kSliceSize, 'a') + std::string(Buffer::kSliceSize, 'b'));
}

TEST(BufferTest, SearchAcrossSlices) {
  Buffer a;
  Buffer b;
  a.Add(std::string(Buffer::kSliceSize - 2, 'x') + "\r\n");
  b.Add(std::string(Buffer::kSliceSize, 'z'));
  b.Prepend("\r\nabc");
  a.Move(b);
  ASSERT_GE(a.SliceCount(), 2u);
  EXPECT_EQ(a.Search("\r\n\r\n"), static_cast<ssize_t>(Buffer::kSliceSize - 2));
  EXPECT_EQ(a.Search("abc"), static_cast<ssize_t>(Buffer::kSliceSize + 2));
  EXPECT_EQ(a.Search("\r\n", Buffer::kSliceSize - 1), static_cast<ssize_t>(Buffer::kSliceSize));
  EXPECT_EQ(a.Search("nope"), -1);
  EXPECT_EQ(a.Search("zzz", a.Length() - 2), -1);
}

TEST(BufferTest, FrontSlices) {
  Buffer a;
  Buffer b;
  a.Add(std::string(Buffer::kSliceSize, 'a'));
  b.Add(std::string(Buffer::kSliceSize, 'b'));
  a.Move(b);
  iovec iov[4];
  EXPECT_EQ(a.FrontSlices(iov, 1), 1u);
  EXPECT_EQ(a.FrontSlices(iov, 4), 2u);
  EXPECT_EQ(iov[1].iov_len, Buffer::kSliceSize);
}

class SocketPair : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds_), 0);
  }
  void TearDown() override {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int fds_[2];
};

TEST_F(SocketPair, ReadFromEagainAndEof) {
  Buffer buffer;
  EXPECT_EQ(buffer.ReadFrom(fds_[0], 1 << 20), -1);
  EXPECT_EQ(errno, EAGAIN);
  ASSERT_EQ(::write(fds_[1], "hello", 5), 5);
  EXPECT_EQ(buffer.ReadFrom(fds_[0], 1 << 20), 5);
  EXPECT_EQ(buffer.ToString(), "hello");
  ::shutdown(fds_[1], SHUT_WR);
  EXPECT_EQ(buffer.ReadFrom(fds_[0], 1 << 20), 0);
}

TEST_F(SocketPair, ReadFromFillsTailThenNewSlicesAndHonoursMax) {
  Buffer buffer;
  buffer.Add("x");  // the tail slice has free space
  std::string data(100000, 'd');
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = static_cast<char>('a' + i % 26);
  }
  size_t written = 0;
  while (written < data.size()) {
    ssize_t n = ::write(fds_[1], data.data() + written, data.size() - written);
    if (n < 0) {
      break;  // socket buffer full: read what is there
    }
    written += static_cast<size_t>(n);
  }
  ASSERT_GT(written, 40000u);
  EXPECT_EQ(buffer.ReadFrom(fds_[0], 20000), 20000);
  EXPECT_EQ(buffer.Length(), 20001u);
  EXPECT_EQ(buffer.SliceCount(), 2u);  // the tail filled, then one fresh slice
  ssize_t n;
  while ((n = buffer.ReadFrom(fds_[0], 1 << 20)) > 0) {
  }
  EXPECT_EQ(buffer.ToString(), "x" + data.substr(0, written));
}

TEST_F(SocketPair, WriteToDrainsWhatWasWritten) {
  Buffer out;
  for (int i = 0; i < 4; ++i) {
    Buffer b;
    b.Add(std::string(Buffer::kSliceSize, static_cast<char>('0' + i)));
    out.Move(b);
  }
  std::string expected = out.ToString();
  std::string received;
  Buffer in;
  while (!out.Empty()) {
    ssize_t n = out.WriteTo(fds_[1]);
    if (n < 0) {
      ASSERT_EQ(errno, EAGAIN);
    }
    in.ReadFrom(fds_[0], 1 << 20);
  }
  EXPECT_EQ(in.ToString(), expected);
  EXPECT_EQ(out.WriteTo(fds_[1]), 0);
}

}  // namespace
}  // namespace ottava::mesh
