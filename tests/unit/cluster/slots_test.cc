// Replication slot names and the statements SlotManager sends (the server-side behaviour is
// covered by tests/fault/test_replication_slots.py against real servers).
#include "cluster/slots.h"

#include <gtest/gtest.h>

#include <set>

namespace pgpilot::cluster {
namespace {

TEST(SlotName, ValidDeterministicAndUniquePerNode) {
  std::set<std::string> seen;
  for (int id = 0; id <= 127; ++id) {
    const std::string name = slotName(id);
    EXPECT_TRUE(validSlotName(name)) << name;
    EXPECT_EQ(name, slotName(id));
    EXPECT_TRUE(seen.insert(name).second) << name;
    EXPECT_EQ(slotNode(name), id);
  }
  EXPECT_EQ(slotName(0), "pgpilot_node_0");
  EXPECT_EQ(slotName(12), "pgpilot_node_12");
}

TEST(SlotName, OtherSlotsAreNotOurs) {
  EXPECT_EQ(slotNode("pgpilot_node_"), std::nullopt);
  EXPECT_EQ(slotNode("pgpilot_node_01"), std::nullopt);
  EXPECT_EQ(slotNode("pgpilot_node_1x"), std::nullopt);
  EXPECT_EQ(slotNode("pgpilot_node_-1"), std::nullopt);
  EXPECT_EQ(slotNode("node_1"), std::nullopt);
  EXPECT_EQ(slotNode("patroni_node_1"), std::nullopt);
}

TEST(SlotName, PostgresRules) {
  EXPECT_TRUE(validSlotName("a_1"));
  EXPECT_FALSE(validSlotName(""));
  EXPECT_FALSE(validSlotName("Upper"));
  EXPECT_FALSE(validSlotName("has-dash"));
  EXPECT_FALSE(validSlotName("has space"));
  EXPECT_TRUE(validSlotName(std::string(63, 'a')));
  EXPECT_FALSE(validSlotName(std::string(64, 'a')));
}

TEST(SlotSql, CreateOnlyTheMissingOnesInOneStatement) {
  const std::string sql = createSlotsSql({"pgpilot_node_1", "pgpilot_node_2"});
  EXPECT_NE(sql.find("pg_create_physical_replication_slot(n, true)"), std::string::npos) << sql;
  EXPECT_NE(sql.find("ARRAY['pgpilot_node_1', 'pgpilot_node_2']"), std::string::npos) << sql;
  EXPECT_NE(sql.find("NOT IN (SELECT slot_name FROM pg_replication_slots)"), std::string::npos)
      << sql;
}

TEST(SlotSql, DropOnlyWhenInactiveAndQuoted) {
  const std::string sql = dropSlotIfInactiveSql("pgpilot_node_3");
  EXPECT_NE(sql.find("slot_name = 'pgpilot_node_3'"), std::string::npos) << sql;
  EXPECT_NE(sql.find("WHERE NOT active"), std::string::npos) << sql;
  EXPECT_NE(dropSlotIfInactiveSql("x'y").find("'x''y'"), std::string::npos);
}

}  // namespace
}  // namespace pgpilot::cluster
