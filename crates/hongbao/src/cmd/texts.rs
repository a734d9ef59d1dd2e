//! The texts of a red packet, as `send` and `campaign run` take them.

/// The packet's texts; each left out takes the merchant's default (in a
/// campaign: for the rows without their own).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TextArgs {
    /// The sender's name (default: the merchant's send_name).
    #[arg(long)]
    pub(crate) send_name: Option<String>,
    /// The blessing (default: the merchant's wishing).
    #[arg(long)]
    pub(crate) wishing: Option<String>,
    /// The activity's name (default: the merchant's act_name).
    #[arg(long)]
    pub(crate) act_name: Option<String>,
    /// A remark (default: the merchant's remark).
    #[arg(long)]
    pub(crate) remark: Option<String>,
    /// The scene (PRODUCT_1 … PRODUCT_8), required outside 1.00–200.00 yuan.
    #[arg(long)]
    pub(crate) scene_id: Option<String>,
}
