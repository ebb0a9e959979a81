"""Released migrations are frozen: an installed database has already run them.

A change to sql/v000N/ or to a released revision would never reach the databases that
ran it, and would make a fresh install differ from an upgraded one. Change behaviour in a
new revision instead (functions: edit sql/functions/ and call apply_functions()).
When a revision is released, add its files here.
"""

from __future__ import annotations

import hashlib

import pytest

from tests.support import REPO_ROOT

# folder -> {file name: sha256}
RELEASED: dict[str, dict[str, str]] = {
    "migrations/versions": {
        "0001_core.py": "de7d16bb1ca9b955f991f7176a5883623c963f9405fb4de4da163d2594560b2c",
        "0002_roles.py": "530330952118ed84f41d919ccfef0b5f5c07c6da47450b2359012488e04a1b95",
        "0003_models.py": "e690f2faa5a91cb8718477d52eb4a7b480b197d57658933d3a608da7860cc6b6",
        "0004_functions_by_concern.py": (
            "c7a136ab9cca2be4fa1e33113e549c4da081c57da6a515242570e04c51c4d42b"
        ),
        "0005_hardening.py": "787e218d0a0cdf1e1d6bbb74fcba5c7da504ae29f83bfd46f22f72b1da9cfd1d",
        "0006_served_path.py": "9b22f7759efab2302fdb7508745205def337e500e290de07a784b7964c83fbe8",
        "0007_incremental.py": "68b46e431ebc6c3031b3e77a0d9723238b0de81c60dd54148cb3a294270460dd",
        "0008_fold_and_prior.py": (
            "5e01c8542737fd4bee83c689c0189eb0df2aaa62feb3e7573bc6d2cb84b34894"
        ),
        "0009_lean_served_path.py": (
            "7c48903a1231a0e25e470fd1629ca7564e42cabe07dbfda198a8fe595a18fd0d"
        ),
        "0010_incremental_popularity.py": (
            "4015844002d3c20b82a7e0aa55223652ad6286cb9d0814bf713a46efb4af01b0"
        ),
        "0011_scale.py": "64a6238ca00f5461364c8d5bec3712cd22768180858099dd8099ca6d850c73dc",
        "0012_covisit_upkeep.py": (
            "48df33746abe00ec37af0c58b81d8c31a03c122773e578731402120944d927bd"
        ),
        "0013_new_items_follow_items.py": (
            "e752d6d9c35477e89e8739f11c41184d0383c424025b055bd37097e48d61af3f"
        ),
        "0014_history_from_the_key.py": (
            "9733a553e0e2e873fa1b88d380929bd2da95100671f99a6f7507cca9b8aac4d1"
        ),
        "0015_idle_maintenance.py": (
            "784ab9e0d419818b4de913a08c20df598d1726177bb0e38ffef8d9c477774f28"
        ),
        "0016_model_vectors_in_bulk.py": (
            "e52806af74d8a1755bfd406b3547181578c330b3b14dc837025199ff862ab659"
        ),
        "0017_worker_history_from_the_key.py": (
            "ccdc78a5d53c35f1ea857d39640599e2ed5b2d2d831dac521e029aed1501c7e2"
        ),
        "0018_covisit_fanout.py": (
            "d60f91fc5c5497204bf895957fed635df84aa058f88da49933fb9e5f2535b4ee"
        ),
        "0019_narrower_pool.py": (
            "2ba35d5c1aa82445ec09848a3b8dd1ef0f811951aeb5a8dc7828aa6c56e39e88"
        ),
        "0020_events_trigger_unpinned.py": (
            "01a45e2c4cf49da4798281f782b698f23f813975ed43131ff5352076cbdd569f"
        ),
        "0021_covisit_filtered_moves.py": (
            "4daf077672f236202b4d739de8b49c92e8b9b73f3fd4b50b3a8c389d174dbe5d"
        ),
    },
    "sql/v0001": {
        "down.sql": "402545ab0ad06ff721c8ba3048c3953f4aaedd0d8c98201f253d31f580746817",
        "functions.sql": "85a56e4890a59577311f1147f449aacb00d72a5fe8980a8a85df117b60a09f0b",
        "schema.sql": "2227dc32097ea25f24046a06a68be2e7aba113e9553e888ae0e287abd5969d77",
    },
    "sql/v0002": {
        "down.sql": "6a6c5dec1aff17af9d6b962c7e434e5904ca04f899429ea217eda6e9aaae77fe",
        "roles.sql": "f682742a348401a8e56de23d51f9cb19ee393e874f4654ef0f4c6f605b2e9067",
    },
    "sql/v0003": {
        "down.sql": "6ef37e2403f42c2687f97b6e41340a907187bd9a805d39f09e8aad253172fc22",
        "models.sql": "48d9507cabf81e4261aeb4b869c65e6a9179c5f9b0c5992b390eb77770857ce7",
    },
    "sql/v0004/functions": {
        "010_queues.sql": "1c6ad72c850cf1e127f184e81c102039bcc53e94f415e4bc0a9fe53fdd1bfe2f",
        "020_weights.sql": "cde6a61bdc6c50d532957fcd43942803ceaf0c751951583cbd6e7f50f1125890",
        "030_history.sql": "9dc553bca0d799c01181551ecdd6083103fc2c68c30a02fd98d1727edf866576",
        "040_user_vector.sql": "bef321b70fb468f17a0ab9d3eb3b7e83003179f98f834fe462a4e80c220a1389",
        "050_maintenance.sql": "110673750faab245ed7e9dfa8a743d670c711772dfbdba6af03156eec7b44819",
        "060_ranking.sql": "5c6e8edb91bcb71a47e02f0c2a441cf51f312c0d6885e7b99f05a17a0e7c5eef",
        "070_api.sql": "0cddb68c980a7a2155bc42d13e15123ad53f447a010496e180bd3f65e608fc49",
        "080_models.sql": "68549d3711f3e5abb17354f21e0f1e29e4403e03092fecdcf5dec258532b1da5",
        "090_privileges.sql": "7b1d45e913abb56a8fa204c327804d785c52844ba58b5d2980cc36dc1eae5456",
    },
    "sql/v0005": {
        "down.sql": "2be4b57048a17c17d01d7af28b7c1794942eb1af74f0a05d4345694574cb50af",
        "hardening.sql": "fa2f02f767a81b79c6c98605f5b37f728152178d35d86614fccd0deb656630fb",
    },
    "sql/v0005/functions": {
        "010_queues.sql": "4d3415aed530120b6af73d196d76181fc0a28f787ecbfdcce8a94a530b13a694",
        "020_weights.sql": "cde6a61bdc6c50d532957fcd43942803ceaf0c751951583cbd6e7f50f1125890",
        "030_history.sql": "9dc553bca0d799c01181551ecdd6083103fc2c68c30a02fd98d1727edf866576",
        "040_user_vector.sql": "832498906bc7d4b4f659b6f069ac17202d8aa81f0f6d1ff66a89cd3624cd4035",
        "050_maintenance.sql": "0f76fcefbe8626cc61f439818c7233411d09c37791dd48a594c5595aa176d503",
        "055_privacy.sql": "0766a9bcb255155cedb9343aa4261cdd9e9479eccfec049f307551f111449137",
        "060_ranking.sql": "5c6e8edb91bcb71a47e02f0c2a441cf51f312c0d6885e7b99f05a17a0e7c5eef",
        "070_api.sql": "0cddb68c980a7a2155bc42d13e15123ad53f447a010496e180bd3f65e608fc49",
        "080_models.sql": "68549d3711f3e5abb17354f21e0f1e29e4403e03092fecdcf5dec258532b1da5",
        "090_privileges.sql": "96cee60b52ba6a14547db72fc13424fcce195a11ac5a3ea0c93a3eca6c7ba8f6",
    },
    "sql/v0006": {
        "down.sql": "8a801c2f7f12e40c1c1f7408bb7fd6dc66112b42f5a4d87a9e832e7dee30ace6",
        "drop_replaced.sql": "7c24d5f999746878760dbc291e9eee500589bd264d84247d54d93b71ac73b2dc",
        "served_path.sql": "a17cfce4695fb9eb15de11fda0e5dc6ed91edde159e8d159e06bf370dfa296fb",
    },
    "sql/v0007": {
        "down.sql": "3a3b2aeb14fac068ecc8cddc652bac0e06094e7cae331d982ed4df24e0b40cfa",
        "imports.sql": "bf0ad74a1e39074bdff38b60ed86bc0ef76a13ae00456c6fbdf615f87f1527f6",
        "imports_down.sql": "04f73fa7be5f3efe5938091e3e8f1562684a32bd99741a438e41938de7c02cdd",
        "maintenance.sql": "a9e1d858d70a9f6ddb0b80453392feee1f12864b46841d3e3ee5ddc222596047",
    },
    "sql/v0008": {
        "down.sql": "241db5e2b4cae7ef843a613ee6c8b388c737e9fa20ada09f3a169578befc6f1f",
        "fold_and_prior.sql": "d862f335d8e96161982f3b343588727964e1722a9ed8cb40cf756239373491ac",
    },
    "sql/v0009": {
        "down.sql": "b8fb757522f4e15ca76eee626948f6e06d02c4a0b993501681b4d152f2ec2dad",
        "lean_served_path.sql": (
            "7548665e82f8c4a7370e915da60db5ae4ee07358c0c030b36bdb390d48ac3efe"
        ),
    },
    "sql/v0010": {
        "covisit_reserve.sql": "450c9859fdaeec645489db3e4619d648b537e6b0f8c930089a3b3f5c65d616da",
        "down.sql": "2baadd37986072480f8b52f6ac4cfa3d2342977a10a7fadf58bc606f017ac66c",
        "down_drop.sql": "1a331139408ff8794a6ea95a3a10cb0ea36dd3f6a1109e8b87be59b7c42b04fd",
        "drop_replaced.sql": "7f686a4b1ed86e22eb32804804ec69763cc35f2618b8bf1e9e92021c7590aa00",
        "incremental_popularity.sql": (
            "4121ae93808bf7f1f1caf3a8ebcbb8f6c58800642df0e4f9a82f42b7bc7118b3"
        ),
    },
    "sql/v0006/functions": {
        "010_queues.sql": "0415e5f168d433ba8c3d03b492b9ed609a30682bc45da82ffa0b20ea86bf69c4",
        "020_weights.sql": "1fc5a55702e4f1ee2d1d47893ddaa866980d3960244d3d09ca469be97cd90e1f",
        "030_history.sql": "9dc553bca0d799c01181551ecdd6083103fc2c68c30a02fd98d1727edf866576",
        "040_user_vector.sql": "3e4e7fcd1171f66835ff2a6d04adc18f76f1cd38bb6138bf1b69eb291c754829",
        "050_maintenance.sql": "0f76fcefbe8626cc61f439818c7233411d09c37791dd48a594c5595aa176d503",
        "055_privacy.sql": "0766a9bcb255155cedb9343aa4261cdd9e9479eccfec049f307551f111449137",
        "060_ranking.sql": "6fb429d35523bb4d9a96dfbf380ca042653bb14e49581dd5b6493ac2b21dc99c",
        "070_api.sql": "7a2fe824c8574761e9dcea8c8bd8266f79bc418c2fc2074a66472f21712be3d0",
        "080_models.sql": "68549d3711f3e5abb17354f21e0f1e29e4403e03092fecdcf5dec258532b1da5",
        "090_privileges.sql": "fde7fae89262e487bb5fdf867eb990202aea594c4c467fe04f85775c1803f934",
    },
    "sql/v0007/functions": {
        "010_queues.sql": "0415e5f168d433ba8c3d03b492b9ed609a30682bc45da82ffa0b20ea86bf69c4",
        "020_weights.sql": "1fc5a55702e4f1ee2d1d47893ddaa866980d3960244d3d09ca469be97cd90e1f",
        "030_history.sql": "9dc553bca0d799c01181551ecdd6083103fc2c68c30a02fd98d1727edf866576",
        "040_user_vector.sql": "3e4e7fcd1171f66835ff2a6d04adc18f76f1cd38bb6138bf1b69eb291c754829",
        "050_maintenance.sql": "f775bc6a90544e249cd8440f7d84f4c32591a316e30b58db4bda4e6cf6eb0665",
        "055_privacy.sql": "37be459ead769bc23216d82d046e5fd4e86e72197168736fc5a6aca22973cf00",
        "060_ranking.sql": "6fb429d35523bb4d9a96dfbf380ca042653bb14e49581dd5b6493ac2b21dc99c",
        "070_api.sql": "7a2fe824c8574761e9dcea8c8bd8266f79bc418c2fc2074a66472f21712be3d0",
        "080_models.sql": "68549d3711f3e5abb17354f21e0f1e29e4403e03092fecdcf5dec258532b1da5",
        "090_privileges.sql": "6de3f381a868aa0bbf66759eec5aab9bcc46d5f604bee12f722a47d96d9b102b",
    },
    "sql/v0008/functions": {
        "010_queues.sql": "0415e5f168d433ba8c3d03b492b9ed609a30682bc45da82ffa0b20ea86bf69c4",
        "020_weights.sql": "1fc5a55702e4f1ee2d1d47893ddaa866980d3960244d3d09ca469be97cd90e1f",
        "030_history.sql": "9dc553bca0d799c01181551ecdd6083103fc2c68c30a02fd98d1727edf866576",
        "040_user_vector.sql": "7a516abab3d9b8ab8f3494eaa7e406ebc134ec6cd9bd314829daf79bc2029385",
        "050_maintenance.sql": "a4ad9fdd1398856939d537011d286f456e4b140eff5650c8c89d471c460212e1",
        "055_privacy.sql": "37be459ead769bc23216d82d046e5fd4e86e72197168736fc5a6aca22973cf00",
        "060_ranking.sql": "a9bb7d87fe273d6feb9d7764e03effdaebe2927ba9ec6a26690d6d812a1b8e2c",
        "070_api.sql": "97ef0476a32ae34c6a9d6ab165a2b7f47d2de9932015fb1031473158033ed1bc",
        "080_models.sql": "417862f4c2a017614b793a0c18cf5bac4138522ae54bb61b6e4ebfb7dc783d68",
        "090_privileges.sql": "6de3f381a868aa0bbf66759eec5aab9bcc46d5f604bee12f722a47d96d9b102b",
    },
    "sql/v0009/functions": {
        "010_queues.sql": "0415e5f168d433ba8c3d03b492b9ed609a30682bc45da82ffa0b20ea86bf69c4",
        "020_weights.sql": "1fc5a55702e4f1ee2d1d47893ddaa866980d3960244d3d09ca469be97cd90e1f",
        "030_history.sql": "9dc553bca0d799c01181551ecdd6083103fc2c68c30a02fd98d1727edf866576",
        "040_user_vector.sql": "6db55098ceba6ce1f3d21338a1be23ae4e8bb3e3c17ed06c2bd7a90d26606ce4",
        "050_maintenance.sql": "a4ad9fdd1398856939d537011d286f456e4b140eff5650c8c89d471c460212e1",
        "055_privacy.sql": "37be459ead769bc23216d82d046e5fd4e86e72197168736fc5a6aca22973cf00",
        "060_ranking.sql": "b9efecb40cd1bdf910f08d8872e792dad6d8ef59fe9deacf0420d619f78be3b8",
        "070_api.sql": "37d4df9c870698a3f74bdaecbcb870c642d996e988f109f765fd1de7bc0967f5",
        "080_models.sql": "417862f4c2a017614b793a0c18cf5bac4138522ae54bb61b6e4ebfb7dc783d68",
        "090_privileges.sql": "6de3f381a868aa0bbf66759eec5aab9bcc46d5f604bee12f722a47d96d9b102b",
    },
    "sql/v0010/functions": {
        "010_queues.sql": "48e1878f38207be20dc7fdbcd50a073ec9fafb05f55face3f92e61f000ec5af2",
        "020_weights.sql": "1fc5a55702e4f1ee2d1d47893ddaa866980d3960244d3d09ca469be97cd90e1f",
        "030_history.sql": "9dc553bca0d799c01181551ecdd6083103fc2c68c30a02fd98d1727edf866576",
        "040_user_vector.sql": "6db55098ceba6ce1f3d21338a1be23ae4e8bb3e3c17ed06c2bd7a90d26606ce4",
        "050_maintenance.sql": "181e82a6812e8aab461054677d94d966bd2cc8a3b9fcaa19cf8726d9dc91fc1d",
        "055_privacy.sql": "4a124d277805f7b2a14a2bf2a6264ebf407a0497dd803eef2121da058ded2913",
        "060_ranking.sql": "e79437a8af61b95a1ab5248851e2acc20df1cbf0d744496f9dee18814930c4f2",
        "070_api.sql": "c5f5c6d862ea278ea3c8e41cd0e1243dde1cd895cbb63dfd10e050358192554e",
        "080_models.sql": "417862f4c2a017614b793a0c18cf5bac4138522ae54bb61b6e4ebfb7dc783d68",
        "090_privileges.sql": "816e76c969bf88cb707c18da64a3f722fd3436795a49db414e63e890260d9347",
    },
    "sql/v0011": {
        "covisit_keys.sql": "db20a7bdb4fd24d753e6d7cb333766823ab81852e61ffe3bc690ba2bcf5832b1",
        "down.sql": "3fc306a51c0c7456b117d12c668073360c5342ea642741ccfadc86e46a5ab9c3",
    },
    "sql/v0011/functions": {
        "010_queues.sql": "48e1878f38207be20dc7fdbcd50a073ec9fafb05f55face3f92e61f000ec5af2",
        "020_weights.sql": "1fc5a55702e4f1ee2d1d47893ddaa866980d3960244d3d09ca469be97cd90e1f",
        "030_history.sql": "9dc553bca0d799c01181551ecdd6083103fc2c68c30a02fd98d1727edf866576",
        "040_user_vector.sql": "6db55098ceba6ce1f3d21338a1be23ae4e8bb3e3c17ed06c2bd7a90d26606ce4",
        "050_maintenance.sql": "49ec0354e0864d32fe985112ac2b0ae9624e7d8e4c051d0e249b27884f56ecc0",
        "055_privacy.sql": "4a124d277805f7b2a14a2bf2a6264ebf407a0497dd803eef2121da058ded2913",
        "060_ranking.sql": "e2176046071f46cbbdb0f7d3f8d2f20290023dbb1494237d5c6c5c80804a1012",
        "070_api.sql": "f61d10ce374b79f507ad79fc8f0dca37985af1b9784ce6e8cbb1e33ad74e191c",
        "080_models.sql": "417862f4c2a017614b793a0c18cf5bac4138522ae54bb61b6e4ebfb7dc783d68",
        "090_privileges.sql": "816e76c969bf88cb707c18da64a3f722fd3436795a49db414e63e890260d9347",
    },
    "sql/v0012": {
        "autovacuum.sql": "62168dff7b5e8880e293b0383ead2d540bb0df1564869a7b13d09351ad929d50",
        "down.sql": "ae5fb91df5f0e4247bbc08c10888c88d5a27c7815680aeb482a46e85279dbe25",
        "unlogged.sql": "fcbaf5e07d7e5fc8758e49ebbb99036d4e92c1215a03a46d0bd50731c4826372",
    },
    "sql/v0012/functions": {
        "010_queues.sql": "48e1878f38207be20dc7fdbcd50a073ec9fafb05f55face3f92e61f000ec5af2",
        "020_weights.sql": "1fc5a55702e4f1ee2d1d47893ddaa866980d3960244d3d09ca469be97cd90e1f",
        "030_history.sql": "9dc553bca0d799c01181551ecdd6083103fc2c68c30a02fd98d1727edf866576",
        "040_user_vector.sql": "6db55098ceba6ce1f3d21338a1be23ae4e8bb3e3c17ed06c2bd7a90d26606ce4",
        "050_maintenance.sql": "061aad3c2729819bebe281cc2e4bc51cf2cd6c4b7a91b565288ce265e91b4d8d",
        "055_privacy.sql": "4a124d277805f7b2a14a2bf2a6264ebf407a0497dd803eef2121da058ded2913",
        "060_ranking.sql": "e2176046071f46cbbdb0f7d3f8d2f20290023dbb1494237d5c6c5c80804a1012",
        "070_api.sql": "f61d10ce374b79f507ad79fc8f0dca37985af1b9784ce6e8cbb1e33ad74e191c",
        "080_models.sql": "417862f4c2a017614b793a0c18cf5bac4138522ae54bb61b6e4ebfb7dc783d68",
        "090_privileges.sql": "816e76c969bf88cb707c18da64a3f722fd3436795a49db414e63e890260d9347",
    },
    "sql/v0013": {
        "down.sql": "6f5beda6e258c9fd071a915612c7182306ab9c366e141e768047ed3d6958f74c",
        "new_items.sql": "92782d9566d4d93c62ccae7888633cd276f8b5bf4cd370d50f4d97c42e207ad6",
    },
    "sql/v0013/functions": {
        "010_queues.sql": "cc4531a4996919814f72c1d8ae9b43d121db96f09d1e5f6aacb43cf6292d1a9d",
        "020_weights.sql": "1fc5a55702e4f1ee2d1d47893ddaa866980d3960244d3d09ca469be97cd90e1f",
        "030_history.sql": "9dc553bca0d799c01181551ecdd6083103fc2c68c30a02fd98d1727edf866576",
        "040_user_vector.sql": "6db55098ceba6ce1f3d21338a1be23ae4e8bb3e3c17ed06c2bd7a90d26606ce4",
        "050_maintenance.sql": "061aad3c2729819bebe281cc2e4bc51cf2cd6c4b7a91b565288ce265e91b4d8d",
        "055_privacy.sql": "4a124d277805f7b2a14a2bf2a6264ebf407a0497dd803eef2121da058ded2913",
        "060_ranking.sql": "e2176046071f46cbbdb0f7d3f8d2f20290023dbb1494237d5c6c5c80804a1012",
        "070_api.sql": "f61d10ce374b79f507ad79fc8f0dca37985af1b9784ce6e8cbb1e33ad74e191c",
        "080_models.sql": "417862f4c2a017614b793a0c18cf5bac4138522ae54bb61b6e4ebfb7dc783d68",
        "090_privileges.sql": "1de05e4d2e3b1db39d0238af04a655e7d3f9f2f28b4ec96c392d790dad49b33b",
    },
    "sql/v0014": {
        "down.sql": "f998771334a7c9eb69c77fae6e3cbc017d17ea00c6a24b250ab7601f8f12ebcb",
        "events_key.sql": "0eb153f9a3e1c7166f1f31d3f5b6ef5aa9b4378003627afd9411f73521f71483",
    },
    "sql/v0015": {
        "down.sql": "2bc27ee3f0ce2fbef9afa562b2872ee6b6576bfc102f7f962b35358c59ef970d",
        "readonly_backlog.sql": "dd80a0d6e5b031d42a9e7fef51c9b3547019808b39669861b84f167f7ccab8ab",
    },
    "sql/v0016": {
        "down.sql": "c06cc5cb51f0d1cc55289461f250e0699300b4ed362541db2b99ed2ed4180dfe",
        "item_vectors.sql": "9f3189fad248a35b761ce2f9db709b63803dae686c3f01666e97db324114263b",
    },
    "sql/v0017": {
        "down.sql": "169515a37ea2e1fb2fd1487e19df0678a1847013c02dd8d5ea7f7b1cee40dba0",
        "events_key.sql": "907b177d203f3261dc6677a898d05d1d20f921471a40a60e284836b77c1f1177",
    },
    "sql/v0018": {
        "covisit_fanout.sql": "c27a085d3b31366b74c601f7fd84fda6be55a3a1bd2c5773d5a35fdc8378b2fe",
        "down.sql": "387a2c1808e65be2bdb33bc417f208426a544297031fcee72d127431aa95be9c",
    },
    "sql/v0019": {
        "down.sql": "c3952c8c447366e41692d1879007adec588100ad7ab3a50d2e5003d7233b0423",
        "narrower_pool.sql": "8d9684f3ce3278208489cde0cb0312800bbe4c578f4db97e20fd80a3ffb539ee",
    },
    "sql/v0015/functions": {
        "010_queues.sql": "cc4531a4996919814f72c1d8ae9b43d121db96f09d1e5f6aacb43cf6292d1a9d",
        "020_weights.sql": "1fc5a55702e4f1ee2d1d47893ddaa866980d3960244d3d09ca469be97cd90e1f",
        "030_history.sql": "653d6f940c8083f514507b9c9064f975b22b751841d5b61ae1f9f85ef0b9cdf3",
        "040_user_vector.sql": "6db55098ceba6ce1f3d21338a1be23ae4e8bb3e3c17ed06c2bd7a90d26606ce4",
        "050_maintenance.sql": "050861a89c23c4c1a00d17ca30947858b2c9e10fb87ef0b5dbd6bf26582bfc44",
        "055_privacy.sql": "4a124d277805f7b2a14a2bf2a6264ebf407a0497dd803eef2121da058ded2913",
        "060_ranking.sql": "e2176046071f46cbbdb0f7d3f8d2f20290023dbb1494237d5c6c5c80804a1012",
        "070_api.sql": "f61d10ce374b79f507ad79fc8f0dca37985af1b9784ce6e8cbb1e33ad74e191c",
        "080_models.sql": "417862f4c2a017614b793a0c18cf5bac4138522ae54bb61b6e4ebfb7dc783d68",
        "090_privileges.sql": "1de05e4d2e3b1db39d0238af04a655e7d3f9f2f28b4ec96c392d790dad49b33b",
    },
    "sql/v0016/functions": {
        "010_queues.sql": "8261d30ecda73b33e2ca9e3f2fda9d82799f34f21ac38d313fa8e2eba4774700",
        "020_weights.sql": "1fc5a55702e4f1ee2d1d47893ddaa866980d3960244d3d09ca469be97cd90e1f",
        "030_history.sql": "653d6f940c8083f514507b9c9064f975b22b751841d5b61ae1f9f85ef0b9cdf3",
        "040_user_vector.sql": "6db55098ceba6ce1f3d21338a1be23ae4e8bb3e3c17ed06c2bd7a90d26606ce4",
        "050_maintenance.sql": "050861a89c23c4c1a00d17ca30947858b2c9e10fb87ef0b5dbd6bf26582bfc44",
        "055_privacy.sql": "4a124d277805f7b2a14a2bf2a6264ebf407a0497dd803eef2121da058ded2913",
        "060_ranking.sql": "e2176046071f46cbbdb0f7d3f8d2f20290023dbb1494237d5c6c5c80804a1012",
        "070_api.sql": "eb6b5f917d534dece5f0bc4890eb8a97ac65880c4d0b7fd16d54cf75cd41dc87",
        "080_models.sql": "55c8118fc74a5600d379ac686d9ae39d7a109fc2200d16101a255e8f4ba7b09d",
        "090_privileges.sql": "477db506e944ffbdc8b4471de9f3128184b78799588d619707b0fd3be7242f26",
    },
    "sql/v0018/functions": {
        "010_queues.sql": "8261d30ecda73b33e2ca9e3f2fda9d82799f34f21ac38d313fa8e2eba4774700",
        "020_weights.sql": "1fc5a55702e4f1ee2d1d47893ddaa866980d3960244d3d09ca469be97cd90e1f",
        "030_history.sql": "653d6f940c8083f514507b9c9064f975b22b751841d5b61ae1f9f85ef0b9cdf3",
        "040_user_vector.sql": "6db55098ceba6ce1f3d21338a1be23ae4e8bb3e3c17ed06c2bd7a90d26606ce4",
        "050_maintenance.sql": "024bf0fbd52f18c1c691f317dadb5595e7f40290fb0c8161086c304f21cc35dd",
        "055_privacy.sql": "4a124d277805f7b2a14a2bf2a6264ebf407a0497dd803eef2121da058ded2913",
        "060_ranking.sql": "884bd25ea52d841ef2c7d5f01a23a0d1dc557661473f3c344b3a385cdf451cdb",
        "070_api.sql": "eb6b5f917d534dece5f0bc4890eb8a97ac65880c4d0b7fd16d54cf75cd41dc87",
        "080_models.sql": "55c8118fc74a5600d379ac686d9ae39d7a109fc2200d16101a255e8f4ba7b09d",
        "090_privileges.sql": "477db506e944ffbdc8b4471de9f3128184b78799588d619707b0fd3be7242f26",
    },
    "sql/v0019/functions": {
        "010_queues.sql": "8261d30ecda73b33e2ca9e3f2fda9d82799f34f21ac38d313fa8e2eba4774700",
        "020_weights.sql": "1fc5a55702e4f1ee2d1d47893ddaa866980d3960244d3d09ca469be97cd90e1f",
        "030_history.sql": "653d6f940c8083f514507b9c9064f975b22b751841d5b61ae1f9f85ef0b9cdf3",
        "040_user_vector.sql": "6db55098ceba6ce1f3d21338a1be23ae4e8bb3e3c17ed06c2bd7a90d26606ce4",
        "050_maintenance.sql": "024bf0fbd52f18c1c691f317dadb5595e7f40290fb0c8161086c304f21cc35dd",
        "055_privacy.sql": "4a124d277805f7b2a14a2bf2a6264ebf407a0497dd803eef2121da058ded2913",
        "060_ranking.sql": "5ddb481d4f009c8198e3337baaf6f8608afa3239d7a904b10474cd9b7f2947b7",
        "070_api.sql": "b7ecdea251335c772e37f1c9bbeef0e6af20a4a163486858960a5625b001a96b",
        "080_models.sql": "55c8118fc74a5600d379ac686d9ae39d7a109fc2200d16101a255e8f4ba7b09d",
        "090_privileges.sql": "5b5eb644fe5a4641e855857d903e785e1d55bd706e9bb6f253cad39e0d10e503",
    },
    "sql/v0020/functions": {
        "010_queues.sql": "e89ec1139b35ba04a0d06d25e6d5bb5b62cf204de578ba120ba13d4c1c97c183",
        "020_weights.sql": "1fc5a55702e4f1ee2d1d47893ddaa866980d3960244d3d09ca469be97cd90e1f",
        "030_history.sql": "653d6f940c8083f514507b9c9064f975b22b751841d5b61ae1f9f85ef0b9cdf3",
        "040_user_vector.sql": "6db55098ceba6ce1f3d21338a1be23ae4e8bb3e3c17ed06c2bd7a90d26606ce4",
        "050_maintenance.sql": "024bf0fbd52f18c1c691f317dadb5595e7f40290fb0c8161086c304f21cc35dd",
        "055_privacy.sql": "4a124d277805f7b2a14a2bf2a6264ebf407a0497dd803eef2121da058ded2913",
        "060_ranking.sql": "5ddb481d4f009c8198e3337baaf6f8608afa3239d7a904b10474cd9b7f2947b7",
        "070_api.sql": "b7ecdea251335c772e37f1c9bbeef0e6af20a4a163486858960a5625b001a96b",
        "080_models.sql": "55c8118fc74a5600d379ac686d9ae39d7a109fc2200d16101a255e8f4ba7b09d",
        "090_privileges.sql": "5b5eb644fe5a4641e855857d903e785e1d55bd706e9bb6f253cad39e0d10e503",
    },
}

MESSAGE = "released migrations never change; add a new revision"
FILES = sorted(f"{folder}/{name}" for folder, files in RELEASED.items() for name in files)


@pytest.mark.parametrize("relative", FILES)
def test_released_file_is_unchanged(relative):
    folder, name = relative.rsplit("/", 1)
    path = REPO_ROOT / relative
    assert path.is_file(), f"{relative} is gone: {MESSAGE}"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == RELEASED[folder][name], f"{relative} changed: {MESSAGE}"


@pytest.mark.parametrize("folder", sorted(RELEASED))
def test_no_file_was_added_to_a_released_revision(folder):
    names = {p.name for p in (REPO_ROOT / folder).iterdir() if p.is_file()}
    if folder == "migrations/versions":  # later revisions live there too
        released = {name.split("_", 1)[0] for name in RELEASED[folder]}
        names = {n for n in names if n.split("_", 1)[0] in released}
    assert names == set(RELEASED[folder]), (
        f"{folder}: {sorted(names ^ set(RELEASED[folder]))}: {MESSAGE}"
    )
