// Starts more worker threads than the budget allows.
const { Worker } = require("worker_threads");
for (let i = 0; i < 200; i++) new Worker("setTimeout(() => {}, 5000)", { eval: true });
