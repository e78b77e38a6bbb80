// Preloaded into a service process by a fault test: SIGUSR2 makes the
// process throw an exception nothing catches, as a bug would.
process.on("SIGUSR2", () => {
  setImmediate(() => {
    throw new Error("a bug nobody caught (fault test)");
  });
});
