// Starts more std::threads than the budget allows: libstdc++ throws std::system_error.
#include <chrono>
#include <thread>
#include <vector>

int main() {
  std::vector<std::thread> threads;
  for (int i = 0; i < 200; i++)
    threads.emplace_back([] { std::this_thread::sleep_for(std::chrono::seconds(5)); });
  for (auto &t : threads) t.join();
}
