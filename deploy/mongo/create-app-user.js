// Run by the mongo image once, on the first start of an empty data volume (docker-entrypoint-initdb.d),
// as the administrator: the user Boochat connects as may read and write its workers' databases
// (<namespace>_<worker>, boochat/settings.py and contracts/routing.py) and nothing else.
const namespace = process.env.BOOCHAT_NAMESPACE || "boochat";
const workers = ["rooms", "messaging", "users", "meetups", "polls", "notifications", "media"];

db.getSiblingDB("admin").createUser({
  user: process.env.BOOCHAT_MONGO_USER,
  pwd: process.env.BOOCHAT_MONGO_PASSWORD,
  roles: workers.map((worker) => ({ role: "readWrite", db: `${namespace}_${worker}` })),
});
